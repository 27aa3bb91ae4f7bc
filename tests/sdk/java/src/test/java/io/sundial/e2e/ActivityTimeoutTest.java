package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.sundial.e2e.Workflows.TimeoutSpec;
import io.sundial.e2e.Workflows.TimeoutsWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.history.v1.ActivityTaskScheduledEventAttributes;
import io.temporal.client.WorkflowClient;
import java.util.List;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The four activity timeouts: every combination the SDK accepts (schedule-to-close or
 * start-to-close present) runs, and the timeouts the server fills in or clamps are checked in the
 * activity task and in the scheduled event; then each timeout is made to fire.
 */
class ActivityTimeoutTest extends E2EBase {
  // Deliberately out of order so that the server has to clamp:
  // schedule-to-start and start-to-close exceed schedule-to-close, heartbeat exceeds start-to-close.
  static final long STC = 20_000;
  static final long STS = 25_000;
  static final long START = 30_000;
  static final long HB = 40_000;

  /** Bit 0 schedule-to-close, 1 schedule-to-start, 2 start-to-close, 3 heartbeat. */
  static Stream<Arguments> validCombinations() {
    return IntStream.range(1, 16).filter(m -> (m & 1) != 0 || (m & 4) != 0)
        .mapToObj(m -> Arguments.of(m, describe(m)));
  }

  static String describe(int mask) {
    StringBuilder b = new StringBuilder();
    if ((mask & 1) != 0) b.append("scheduleToClose ");
    if ((mask & 2) != 0) b.append("scheduleToStart ");
    if ((mask & 4) != 0) b.append("startToClose ");
    if ((mask & 8) != 0) b.append("heartbeat ");
    return b.toString().trim();
  }

  /** What the server should make of the set timeouts: {stc, sts, start, hb} in ms, 0 = none. */
  static long[] expected(int mask) {
    long stc = (mask & 1) != 0 ? STC : 0;
    long sts = (mask & 2) != 0 ? STS : 0;
    long start = (mask & 4) != 0 ? START : 0;
    long hb = (mask & 8) != 0 ? HB : 0;
    if (stc > 0) {
      sts = sts > 0 ? Math.min(sts, stc) : stc;
      start = start > 0 ? Math.min(start, stc) : stc;
    }
    // No workflow run timeout here, so without schedule-to-close both stay unlimited (0).
    if (hb > start) {
      hb = start;
    }
    return new long[] {stc, sts, start, hb};
  }

  @ParameterizedTest(name = "[{index}] {1}")
  @MethodSource("validCombinations")
  void timeoutCombination(int mask, String combo, TestInfo info) {
    String id = wid(info) + "-" + mask;
    TimeoutSpec spec = TimeoutSpec.of(
        (mask & 1) != 0 ? STC : 0, (mask & 2) != 0 ? STS : 0,
        (mask & 4) != 0 ? START : 0, (mask & 8) != 0 ? HB : 0);
    TimeoutsWf wf = stub(TimeoutsWf.class, id);
    WorkflowClient.start(wf::run, spec);
    long[] want = expected(mask);
    assertEquals("stc=" + want[0] + ";start=" + want[2] + ";hb=" + want[3],
        result(wf, String.class), "timeouts seen by the activity for " + combo);
    ActivityTaskScheduledEventAttributes a =
        firstEvent(history(id), EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
            .getActivityTaskScheduledEventAttributes();
    assertEquals(List.of(want[0], want[1], want[2], want[3]),
        List.of(millis(a.getScheduleToCloseTimeout()), millis(a.getScheduleToStartTimeout()),
            millis(a.getStartToCloseTimeout()), millis(a.getHeartbeatTimeout())),
        "scheduled event [scheduleToClose, scheduleToStart, startToClose, heartbeat] for " + combo);
  }

  static long millis(com.google.protobuf.Duration d) {
    return d.getSeconds() * 1000 + d.getNanos() / 1_000_000;
  }

  private static String run(TestInfo info, TimeoutSpec spec) {
    String id = wid(info);
    TimeoutsWf wf = stub(TimeoutsWf.class, id);
    WorkflowClient.start(wf::run, spec);
    return result(wf, String.class);
  }

  @Test
  void startToCloseTimeoutFires(TestInfo info) {
    TimeoutSpec spec = TimeoutSpec.of(0, 0, 1000, 0);
    spec.activity = "Sleep";
    spec.args = List.of(3000);
    assertEquals("timeout:TIMEOUT_TYPE_START_TO_CLOSE;hb=<none>;retry=RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED",
        run(info, spec));
  }

  @Test
  void heartbeatTimeoutFiresWithLastDetails(TestInfo info) {
    TimeoutSpec spec = TimeoutSpec.of(0, 0, 10_000, 1000);
    spec.activity = "HeartbeatOnceThenSleep";
    spec.args = List.of("hb-1", 4000);
    assertEquals("timeout:TIMEOUT_TYPE_HEARTBEAT;hb=hb-1;retry=RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED",
        run(info, spec));
  }

  @Test
  void scheduleToCloseTimeoutFiresDuringRetry(TestInfo info) {
    // Attempt 1 fails at once; attempt 2 starts ~0.5 s later and sleeps, so schedule-to-close
    // (2 s from scheduling) expires before that attempt's start-to-close (2 s from its start).
    TimeoutSpec spec = TimeoutSpec.of(2000, 0, 10_000, 0);
    spec.activity = "FailOnceThenSleep";
    spec.args = List.of(wid(info), 5000);
    spec.maxAttempts = 0;
    spec.retryIntervalMs = 500;
    assertEquals("timeout:TIMEOUT_TYPE_SCHEDULE_TO_CLOSE;hb=<none>;retry=RETRY_STATE_TIMEOUT",
        run(info, spec));
  }

  @Test
  void scheduleToStartTimeoutFiresWithoutWorker(TestInfo info) {
    TimeoutSpec spec = TimeoutSpec.of(30_000, 1000, 0, 0);
    spec.taskQueue = Workflows.NO_WORKER_QUEUE;
    spec.activity = "Upper";
    spec.args = List.of("x");
    spec.maxAttempts = 3;
    assertEquals("timeout:TIMEOUT_TYPE_SCHEDULE_TO_START;hb=<none>;retry=RETRY_STATE_TIMEOUT",
        run(info, spec));
  }
}
