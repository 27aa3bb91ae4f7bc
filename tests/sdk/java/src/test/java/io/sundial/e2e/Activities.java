package io.sundial.e2e;

import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.activity.ActivityInfo;
import io.temporal.activity.ActivityInterface;
import io.temporal.client.ActivityCanceledException;
import io.temporal.client.ActivityCompletionException;
import io.temporal.failure.ApplicationFailure;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** Activities shared by the suite's workflows; per-key counters let tests count attempts. */
@ActivityInterface
public interface Activities {
  /** Attempts seen per key (a key is usually a workflow id). */
  Map<String, AtomicInteger> ATTEMPTS = new ConcurrentHashMap<>();
  /** Keys of heartbeating activities that observed their cancellation. */
  Map<String, String> CANCEL_SEEN = new ConcurrentHashMap<>();

  static int attempts(String key) {
    AtomicInteger n = ATTEMPTS.get(key);
    return n == null ? 0 : n.get();
  }

  String upper(String s);

  /** Reports the timeouts the worker received, as "stc=..;stc2=..;hb=.." in milliseconds. */
  String timeouts();

  /** Sleeps without heartbeating (bounded). */
  String sleep(long millis);

  /** Heartbeats once with {@code detail}, then sleeps without heartbeating. */
  String heartbeatOnceThenSleep(String detail, long millis);

  /** First call per key fails fast (retryable), later calls sleep. */
  String failOnceThenSleep(String key, long millis);

  /**
   * Attempt 1 heartbeats {@code detail} and fails (retryable); attempt 2 returns what it finds in
   * the heartbeat details of the previous attempt.
   */
  String heartbeatThenFail(String detail);

  /** Heartbeats every 200 ms for up to 30 s; records in CANCEL_SEEN when cancellation shows. */
  String heartbeatUntilCancelled(String key);

  /** Always throws ApplicationFailure of {@code type}, counting attempts under {@code key}. */
  String failWithType(String key, String type);

  /** Fails with type "Transient" until attempt {@code succeedOn}, counting under {@code key}. */
  String flaky(String key, int succeedOn);

  /** Throws a non-retryable ApplicationFailure of type {@code type} with one detail. */
  String failNonRetryable(String type, String detail);

  class Impl implements Activities {
    @Override
    public String upper(String s) {
      return s.toUpperCase();
    }

    @Override
    public String timeouts() {
      ActivityInfo info = Activity.getExecutionContext().getInfo();
      return "stc=" + info.getScheduleToCloseTimeout().toMillis()
          + ";start=" + info.getStartToCloseTimeout().toMillis()
          + ";hb=" + info.getHeartbeatTimeout().toMillis();
    }

    @Override
    public String sleep(long millis) {
      pause(Math.min(millis, 10_000));
      return "slept";
    }

    @Override
    public String heartbeatOnceThenSleep(String detail, long millis) {
      Activity.getExecutionContext().heartbeat(detail);
      pause(Math.min(millis, 10_000));
      return "slept";
    }

    @Override
    public String failOnceThenSleep(String key, long millis) {
      int n = ATTEMPTS.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
      if (n == 1) {
        throw ApplicationFailure.newFailure("first attempt fails", "Transient");
      }
      pause(Math.min(millis, 10_000));
      return "slept";
    }

    @Override
    public String heartbeatThenFail(String detail) {
      ActivityExecutionContext ctx = Activity.getExecutionContext();
      int attempt = ctx.getInfo().getAttempt();
      if (attempt == 1) {
        ctx.heartbeat(detail);
        throw ApplicationFailure.newFailure("fail after heartbeat", "Transient");
      }
      String seen = ctx.getHeartbeatDetails(String.class).orElse("<none>");
      return "attempt=" + attempt + ";details=" + seen;
    }

    @Override
    public String heartbeatUntilCancelled(String key) {
      ActivityExecutionContext ctx = Activity.getExecutionContext();
      for (int i = 0; i < 150; i++) {
        try {
          ctx.heartbeat(i);
        } catch (ActivityCanceledException e) {
          CANCEL_SEEN.put(key, e.getClass().getSimpleName());
          throw e;
        } catch (ActivityCompletionException e) {
          CANCEL_SEEN.put(key, "other:" + e.getClass().getSimpleName());
          throw e;
        }
        pause(200);
      }
      return "never cancelled";
    }

    @Override
    public String failWithType(String key, String type) {
      ATTEMPTS.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
      throw ApplicationFailure.newFailure("failing with " + type, type);
    }

    @Override
    public String flaky(String key, int succeedOn) {
      int n = ATTEMPTS.computeIfAbsent(key, k -> new AtomicInteger()).incrementAndGet();
      int attempt = Activity.getExecutionContext().getInfo().getAttempt();
      if (attempt < succeedOn) {
        throw ApplicationFailure.newFailure("flaky attempt " + attempt, "Transient");
      }
      return "ok@" + attempt + "/" + n;
    }

    @Override
    public String failNonRetryable(String type, String detail) {
      throw ApplicationFailure.newNonRetryableFailure("activity failed: " + detail, type, detail);
    }

    private static void pause(long ms) {
      try {
        Thread.sleep(ms);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }
}
