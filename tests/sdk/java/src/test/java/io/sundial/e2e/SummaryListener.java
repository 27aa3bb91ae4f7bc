package io.sundial.e2e;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;

/**
 * Prints one plain closing line, "java-e2e: N passed, N failed, N skipped", so that the outcome
 * shows even under {@code mvn -q} (which hides Surefire's own summary when everything passes).
 * Registered through META-INF/services.
 */
public class SummaryListener implements TestExecutionListener {
  private final AtomicInteger passed = new AtomicInteger();
  private final AtomicInteger failed = new AtomicInteger();
  private final AtomicInteger skipped = new AtomicInteger();

  @Override
  public void testPlanExecutionStarted(TestPlan testPlan) {
    passed.set(0);
    failed.set(0);
    skipped.set(0);
  }

  @Override
  public void executionSkipped(TestIdentifier id, String reason) {
    if (id.isTest()) {
      skipped.incrementAndGet();
    }
  }

  @Override
  public void executionFinished(TestIdentifier id, TestExecutionResult result) {
    if (!id.isTest()) {
      if (result.getStatus() == TestExecutionResult.Status.FAILED) {
        // a class-level failure (e.g. the server did not start) fails its tests without running them
        System.out.println("[java-e2e] " + id.getDisplayName() + " failed: "
            + result.getThrowable().map(Throwable::toString).orElse("?"));
        failed.incrementAndGet();
      }
      return;
    }
    switch (result.getStatus()) {
      case SUCCESSFUL:
        passed.incrementAndGet();
        break;
      case ABORTED:
        skipped.incrementAndGet();
        break;
      default:
        failed.incrementAndGet();
    }
  }

  @Override
  public void testPlanExecutionFinished(TestPlan testPlan) {
    String target = TestServer.targetName();
    System.out.println("[java-e2e] target " + target);
    System.out.println("java-e2e: " + passed.get() + " passed, " + failed.get() + " failed, "
        + skipped.get() + " skipped");
  }
}
