package io.sundial.e2e;

import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Everything the suite shares: the server, one client and one worker factory with one worker on
 * {@link #TASK_QUEUE}. Created once per JUnit run (in the root store) and closed when the run
 * ends.
 */
final class SuiteEnv implements AutoCloseable {
  static final String TASK_QUEUE = "java-e2e";
  static final String NAMESPACE = "default";

  final TestServer server;
  final WorkflowServiceStubs service;
  final WorkflowClient client;
  final WorkerFactory factory;

  private static volatile SuiteEnv current;

  private SuiteEnv(TestServer server) {
    this.server = server;
    this.service = WorkflowServiceStubs.newConnectedServiceStubs(
        WorkflowServiceStubsOptions.newBuilder().setTarget(server.address()).build(),
        Duration.ofSeconds(10));
    this.client = WorkflowClient.newInstance(service,
        WorkflowClientOptions.newBuilder().setNamespace(NAMESPACE).build());
    this.factory = WorkerFactory.newInstance(client);
    Worker worker = factory.newWorker(TASK_QUEUE);
    worker.registerWorkflowImplementationTypes(Workflows.IMPLEMENTATIONS);
    worker.registerActivitiesImplementations(new Activities.Impl());
    factory.start();
  }

  static SuiteEnv get() {
    SuiteEnv e = current;
    if (e == null) {
      throw new IllegalStateException("SuiteEnv not started (use @ExtendWith(SuiteEnv.Extension))");
    }
    return e;
  }

  @Override
  public void close() {
    try {
      factory.shutdownNow();
      factory.awaitTermination(10, TimeUnit.SECONDS);
      service.shutdownNow();
      service.awaitTermination(5, TimeUnit.SECONDS);
    } finally {
      server.close();
      current = null;
    }
  }

  /** Starts the suite's environment once, before the first test class, in JUnit's root store. */
  static final class Extension implements BeforeAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) {
      ExtensionContext.Store store = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL);
      current = store.getOrComputeIfAbsent(SuiteEnv.class, k -> {
        TestServer server = TestServer.start();
        try {
          System.out.println("[java-e2e] server under test: " + server.target + " at "
              + server.address());
          return new SuiteEnv(server);
        } catch (RuntimeException e) {
          server.close();
          throw e;
        }
      }, SuiteEnv.class);
    }
  }
}
