package io.sundial.e2e;

import io.temporal.activity.ActivityCancellationType;
import io.temporal.activity.ActivityOptions;
import io.temporal.activity.LocalActivityOptions;
import io.temporal.api.enums.v1.ParentClosePolicy;
import io.temporal.common.RetryOptions;
import io.temporal.common.SearchAttributeKey;
import io.temporal.common.SearchAttributes;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.failure.TimeoutFailure;
import io.temporal.workflow.ActivityStub;
import io.temporal.workflow.Async;
import io.temporal.workflow.CancellationScope;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Promise;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.TimerOptions;
import io.temporal.workflow.UpdateMethod;
import io.temporal.workflow.UpdateValidatorMethod;
import io.temporal.workflow.Workflow;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Workflow definitions of the suite; every implementation is registered on the shared worker. */
public final class Workflows {
  private Workflows() {}

  static final String NO_WORKER_QUEUE = "java-e2e-no-worker";
  static final SearchAttributeKey<String> KEYWORD = SearchAttributeKey.forKeyword("CustomKeywordField");
  static final SearchAttributeKey<Long> INT = SearchAttributeKey.forLong("CustomIntField");

  static final Class<?>[] IMPLEMENTATIONS = {
    SimpleActivityImpl.class, TimeoutsImpl.class, HeartbeatRetryImpl.class,
    CancelActivityImpl.class, RetryImpl.class, FlakyImpl.class, LocalActivityImpl.class,
    ParentImpl.class, ChildImpl.class, SignalImpl.class, QueryImpl.class, TimerImpl.class,
    ContinueAsNewImpl.class, SearchAttrImpl.class, MemoImpl.class, BlockingImpl.class,
    FailImpl.class, MetadataImpl.class, PendingActivityImpl.class, HeartbeatDescribeImpl.class,
    UpdateImpl.class,
  };

  static RetryOptions fastRetry(int maxAttempts, String... doNotRetry) {
    return RetryOptions.newBuilder()
        .setInitialInterval(Duration.ofMillis(100))
        .setBackoffCoefficient(1.0)
        .setMaximumAttempts(maxAttempts)
        .setDoNotRetry(doNotRetry)
        .build();
  }

  // ---- activities -------------------------------------------------------------------------

  @WorkflowInterface
  public interface SimpleActivityWf {
    @WorkflowMethod
    String run(String s);
  }

  public static class SimpleActivityImpl implements SimpleActivityWf {
    @Override
    public String run(String s) {
      Activities acts = Workflow.newActivityStub(Activities.class,
          ActivityOptions.newBuilder().setStartToCloseTimeout(Duration.ofSeconds(10)).build());
      return acts.upper(s) + "/" + acts.upper(s + "2");
    }
  }

  /** Which timeouts to set on one activity (0 = unset), and what that activity does. */
  public static class TimeoutSpec {
    public long scheduleToCloseMs;
    public long scheduleToStartMs;
    public long startToCloseMs;
    public long heartbeatMs;
    public String taskQueue;
    public int maxAttempts = 1;
    public long retryIntervalMs = 100;
    public String activity = "Timeouts";
    public List<Object> args = new ArrayList<>();

    public TimeoutSpec() {}

    static TimeoutSpec of(long stc, long sts, long start, long hb) {
      TimeoutSpec s = new TimeoutSpec();
      s.scheduleToCloseMs = stc;
      s.scheduleToStartMs = sts;
      s.startToCloseMs = start;
      s.heartbeatMs = hb;
      return s;
    }
  }

  @WorkflowInterface
  public interface TimeoutsWf {
    /** The activity's result, or "timeout:TYPE;hb=DETAIL" when it fails with a timeout. */
    @WorkflowMethod
    String run(TimeoutSpec spec);
  }

  public static class TimeoutsImpl implements TimeoutsWf {
    @Override
    public String run(TimeoutSpec spec) {
      ActivityOptions.Builder b = ActivityOptions.newBuilder()
          .setRetryOptions(RetryOptions.newBuilder()
              .setInitialInterval(Duration.ofMillis(spec.retryIntervalMs))
              .setBackoffCoefficient(1.0)
              .setMaximumAttempts(spec.maxAttempts)
              .build());
      if (spec.scheduleToCloseMs > 0) {
        b.setScheduleToCloseTimeout(Duration.ofMillis(spec.scheduleToCloseMs));
      }
      if (spec.scheduleToStartMs > 0) {
        b.setScheduleToStartTimeout(Duration.ofMillis(spec.scheduleToStartMs));
      }
      if (spec.startToCloseMs > 0) {
        b.setStartToCloseTimeout(Duration.ofMillis(spec.startToCloseMs));
      }
      if (spec.heartbeatMs > 0) {
        b.setHeartbeatTimeout(Duration.ofMillis(spec.heartbeatMs));
      }
      if (spec.taskQueue != null) {
        b.setTaskQueue(spec.taskQueue);
      }
      ActivityStub stub = Workflow.newUntypedActivityStub(b.build());
      try {
        return stub.execute(spec.activity, String.class, spec.args.toArray());
      } catch (ActivityFailure f) {
        if (f.getCause() instanceof TimeoutFailure) {
          TimeoutFailure t = (TimeoutFailure) f.getCause();
          String hb = t.getLastHeartbeatDetails() == null || t.getLastHeartbeatDetails().getSize() == 0
              ? "<none>" : t.getLastHeartbeatDetails().get(0, String.class);
          return "timeout:" + t.getTimeoutType() + ";hb=" + hb + ";retry=" + f.getRetryState();
        }
        throw f;
      }
    }
  }

  @WorkflowInterface
  public interface HeartbeatRetryWf {
    @WorkflowMethod
    String run(String detail);
  }

  public static class HeartbeatRetryImpl implements HeartbeatRetryWf {
    @Override
    public String run(String detail) {
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(10))
          .setHeartbeatTimeout(Duration.ofSeconds(5))
          .setRetryOptions(fastRetry(3))
          .build());
      return acts.heartbeatThenFail(detail);
    }
  }

  @WorkflowInterface
  public interface CancelActivityWf {
    @WorkflowMethod
    String run(String key);
  }

  public static class CancelActivityImpl implements CancelActivityWf {
    @Override
    public String run(String key) {
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(40))
          .setHeartbeatTimeout(Duration.ofSeconds(2))
          .setCancellationType(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
          .setRetryOptions(fastRetry(1))
          .build());
      List<Promise<String>> result = new ArrayList<>();
      CancellationScope scope = Workflow.newCancellationScope(
          () -> result.add(Async.function(acts::heartbeatUntilCancelled, key)));
      scope.run();
      Workflow.sleep(Duration.ofSeconds(1));
      scope.cancel("test cancels the activity");
      try {
        return "completed:" + result.get(0).get();
      } catch (ActivityFailure f) {
        Throwable c = f.getCause();
        return "activity-failure:" + (c == null ? "null" : c.getClass().getSimpleName());
      } catch (CanceledFailure c) {
        return "canceled-directly";
      }
    }
  }

  @WorkflowInterface
  public interface RetryWf {
    /** Runs failWithType under doNotRetry("Fatal"), maximumAttempts 4; the failure is not caught. */
    @WorkflowMethod
    String run(String key, String type);
  }

  public static class RetryImpl implements RetryWf {
    @Override
    public String run(String key, String type) {
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(10))
          .setRetryOptions(fastRetry(4, "Fatal"))
          .build());
      return acts.failWithType(key, type);
    }
  }

  @WorkflowInterface
  public interface FlakyWf {
    @WorkflowMethod
    String run(String key, int succeedOn, boolean local);
  }

  public static class FlakyImpl implements FlakyWf {
    @Override
    public String run(String key, int succeedOn, boolean local) {
      if (local) {
        Activities acts = Workflow.newLocalActivityStub(Activities.class,
            LocalActivityOptions.newBuilder()
                .setStartToCloseTimeout(Duration.ofSeconds(5))
                .setRetryOptions(fastRetry(5, "Fatal"))
                .build());
        return acts.flaky(key, succeedOn);
      }
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(10))
          .setRetryOptions(fastRetry(5, "Fatal"))
          .build());
      return acts.flaky(key, succeedOn);
    }
  }

  @WorkflowInterface
  public interface LocalActivityWf {
    @WorkflowMethod
    String run(String s);
  }

  public static class LocalActivityImpl implements LocalActivityWf {
    @Override
    public String run(String s) {
      Activities acts = Workflow.newLocalActivityStub(Activities.class,
          LocalActivityOptions.newBuilder().setStartToCloseTimeout(Duration.ofSeconds(5)).build());
      return acts.upper(s) + "+" + acts.upper("local");
    }
  }

  // ---- child workflows --------------------------------------------------------------------

  @WorkflowInterface
  public interface ChildWf {
    /** mode: "double" (returns arg twice), "fail" (an activity fails), "wait" (until released). */
    @WorkflowMethod
    String run(String mode, String arg);

    @SignalMethod
    void release();
  }

  public static class ChildImpl implements ChildWf {
    private boolean released;

    @Override
    public String run(String mode, String arg) {
      switch (mode) {
        case "double":
          return arg + arg;
        case "fail":
          Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
              .setStartToCloseTimeout(Duration.ofSeconds(10))
              .setRetryOptions(fastRetry(3))
              .build());
          return acts.failNonRetryable("ChildActivityError", arg);
        case "wait":
          boolean ok = Workflow.await(Duration.ofSeconds(60), () -> released);
          return (ok ? "released:" : "timed-out:") + arg;
        default:
          return "child:" + mode;
      }
    }

    @Override
    public void release() {
      released = true;
    }
  }

  @WorkflowInterface
  public interface ParentWf {
    /** Starts child {@code <own id>-child} with {@code mode}; "abandon" returns once it started. */
    @WorkflowMethod
    String run(String mode, String arg);
  }

  public static class ParentImpl implements ParentWf {
    @Override
    public String run(String mode, String arg) {
      String childId = Workflow.getInfo().getWorkflowId() + "-child";
      ChildWorkflowOptions.Builder b = ChildWorkflowOptions.newBuilder().setWorkflowId(childId);
      if (mode.equals("abandon")) {
        b.setParentClosePolicy(ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON);
        ChildWf child = Workflow.newChildWorkflowStub(ChildWf.class, b.build());
        Async.function(child::run, "wait", arg);
        String runId = Workflow.getWorkflowExecution(child).get().getRunId();
        return "started:" + childId + ":" + runId;
      }
      ChildWf child = Workflow.newChildWorkflowStub(ChildWf.class, b.build());
      return "parent(" + child.run(mode, arg) + ")";
    }
  }

  // ---- signals, queries, timers, continue-as-new ------------------------------------------

  @WorkflowInterface
  public interface SignalWf {
    @WorkflowMethod
    String run(int expected);

    @SignalMethod
    void add(String item);
  }

  public static class SignalImpl implements SignalWf {
    private final List<String> items = new ArrayList<>();

    @Override
    public String run(int expected) {
      boolean ok = Workflow.await(Duration.ofSeconds(60), () -> items.size() >= expected);
      return (ok ? "" : "timed-out:") + String.join(",", items);
    }

    @Override
    public void add(String item) {
      items.add(item);
    }
  }

  @WorkflowInterface
  public interface QueryWf {
    @WorkflowMethod
    String run(String initial);

    @SignalMethod
    void finish(String value);

    @QueryMethod
    String state();

    @QueryMethod
    String broken(String why);
  }

  public static class QueryImpl implements QueryWf {
    private String state;
    private boolean done;

    @Override
    public String run(String initial) {
      state = "running:" + initial;
      boolean ok = Workflow.await(Duration.ofSeconds(60), () -> done);
      return ok ? state : "timed-out";
    }

    @Override
    public void finish(String value) {
      state = "finished:" + value;
      done = true;
    }

    @Override
    public String state() {
      return state;
    }

    @Override
    public String broken(String why) {
      throw new IllegalStateException("query handler refuses: " + why);
    }
  }

  @WorkflowInterface
  public interface TimerWf {
    /** "sleep": Workflow.sleep(1 s), returns elapsed workflow millis; "cancel": a cancelled timer. */
    @WorkflowMethod
    String run(String mode);
  }

  public static class TimerImpl implements TimerWf {
    @Override
    public String run(String mode) {
      if (mode.equals("sleep")) {
        long t0 = Workflow.currentTimeMillis();
        Workflow.sleep(Duration.ofSeconds(1));
        return "elapsed=" + (Workflow.currentTimeMillis() - t0);
      }
      List<Promise<Void>> timer = new ArrayList<>();
      CancellationScope scope = Workflow.newCancellationScope(
          () -> timer.add(Workflow.newTimer(Duration.ofSeconds(60))));
      scope.run();
      Workflow.sleep(Duration.ofMillis(300));
      scope.cancel();
      try {
        timer.get(0).get();
        return "fired";
      } catch (CanceledFailure e) {
        return "canceled";
      }
    }
  }

  @WorkflowInterface
  public interface ContinueAsNewWf {
    @WorkflowMethod
    String run(int remaining, int acc);
  }

  public static class ContinueAsNewImpl implements ContinueAsNewWf {
    @Override
    public String run(int remaining, int acc) {
      if (remaining > 0) {
        Workflow.continueAsNew(remaining - 1, acc + remaining);
      }
      return "acc=" + acc + ";continued=" + Workflow.getInfo().getContinuedExecutionRunId().isPresent();
    }
  }

  // ---- visibility -------------------------------------------------------------------------

  @WorkflowInterface
  public interface SearchAttrWf {
    @WorkflowMethod
    String run(String keyword, long number);
  }

  public static class SearchAttrImpl implements SearchAttrWf {
    @Override
    public String run(String keyword, long number) {
      SearchAttributes before = Workflow.getTypedSearchAttributes();
      String seen = before.get(KEYWORD) + "/" + before.get(INT);
      Workflow.upsertTypedSearchAttributes(KEYWORD.valueSet(keyword), INT.valueSet(number));
      Workflow.sleep(Duration.ofMillis(100));
      SearchAttributes after = Workflow.getTypedSearchAttributes();
      return seen + "->" + after.get(KEYWORD) + "/" + after.get(INT);
    }
  }

  @WorkflowInterface
  public interface MemoWf {
    @WorkflowMethod
    String run();
  }

  public static class MemoImpl implements MemoWf {
    @Override
    public String run() {
      String seen = Workflow.getMemo("owner", String.class) + "/" + Workflow.getMemo("count", Integer.class);
      Workflow.upsertMemo(java.util.Map.of("count", 4, "added", "by-workflow"));
      Workflow.sleep(Duration.ofMillis(100));
      return seen + "->" + Workflow.getMemo("count", Integer.class) + "/"
          + Workflow.getMemo("added", String.class);
    }
  }

  @WorkflowInterface
  public interface BlockingWf {
    /** Waits (up to 60 s) for nothing; for cancel, terminate and duplicate-id tests. */
    @WorkflowMethod
    String run();
  }

  public static class BlockingImpl implements BlockingWf {
    @Override
    public String run() {
      Workflow.await(Duration.ofSeconds(60), () -> false);
      return "timed-out";
    }
  }

  @WorkflowInterface
  public interface FailWf {
    @WorkflowMethod
    String run(String detail, int code);
  }

  public static class FailImpl implements FailWf {
    @Override
    public String run(String detail, int code) {
      throw io.temporal.failure.ApplicationFailure.newNonRetryableFailure(
          "workflow rejects input", "InvalidInput", detail, code);
    }
  }

  @WorkflowInterface
  public interface PendingActivityWf {
    /** Schedules an activity on a queue no worker polls and waits for it. */
    @WorkflowMethod
    String run();
  }

  public static class PendingActivityImpl implements PendingActivityWf {
    @Override
    public String run() {
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setTaskQueue(NO_WORKER_QUEUE)
          .setScheduleToCloseTimeout(Duration.ofSeconds(60))
          .build());
      return acts.upper("never");
    }
  }

  @WorkflowInterface
  public interface HeartbeatDescribeWf {
    /** Runs a heartbeating activity until signalled to cancel it. */
    @WorkflowMethod
    String run(String key);

    @SignalMethod
    void stop();
  }

  public static class HeartbeatDescribeImpl implements HeartbeatDescribeWf {
    private boolean stop;

    @Override
    public String run(String key) {
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(40))
          .setHeartbeatTimeout(Duration.ofSeconds(2))
          .setCancellationType(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
          .setRetryOptions(fastRetry(1))
          .build());
      List<Promise<String>> result = new ArrayList<>();
      CancellationScope scope = Workflow.newCancellationScope(
          () -> result.add(Async.function(acts::heartbeatUntilCancelled, key)));
      scope.run();
      Workflow.await(Duration.ofSeconds(30), () -> stop);
      scope.cancel();
      try {
        return "completed:" + result.get(0).get();
      } catch (ActivityFailure f) {
        return "stopped";
      }
    }

    @Override
    public void stop() {
      stop = true;
    }
  }

  // ---- user metadata ----------------------------------------------------------------------

  @WorkflowInterface
  public interface MetadataWf {
    @WorkflowMethod
    String run();
  }

  public static class MetadataImpl implements MetadataWf {
    @Override
    public String run() {
      Workflow.newTimer(Duration.ofMillis(200),
          TimerOptions.newBuilder().setSummary("timer summary").build()).get();
      Activities acts = Workflow.newActivityStub(Activities.class, ActivityOptions.newBuilder()
          .setStartToCloseTimeout(Duration.ofSeconds(10))
          .setSummary("activity summary")
          .build());
      String a = acts.upper("meta");
      Activities local = Workflow.newLocalActivityStub(Activities.class,
          LocalActivityOptions.newBuilder()
              .setStartToCloseTimeout(Duration.ofSeconds(5))
              .setSummary("local activity summary")
              .build());
      a = a + local.upper("");
      ChildWf child = Workflow.newChildWorkflowStub(ChildWf.class, ChildWorkflowOptions.newBuilder()
          .setWorkflowId(Workflow.getInfo().getWorkflowId() + "-child")
          .setStaticSummary("child summary")
          .setStaticDetails("child details")
          .build());
      String c = child.run("double", "m");
      return a + "/" + c;
    }
  }

  // ---- workflow updates -------------------------------------------------------------------

  @WorkflowInterface
  public interface UpdateWf {
    /** Waits (up to 60 s) until the {@code finish} update, then returns "done:" + the log. */
    @WorkflowMethod
    String run();

    /** Appends {@code item} to the log and returns the log so far. */
    @UpdateMethod
    String append(String item);

    /** Rejects empty items and items starting with "bad". */
    @UpdateValidatorMethod(updateName = "append")
    void validateAppend(String item);

    /** Accepted, then fails with ApplicationFailure of type "UpdateRefused". */
    @UpdateMethod
    String refuse(String why);

    /** Accepted, then waits (up to 30 s) for the {@code release} signal. */
    @UpdateMethod
    String waitForRelease(String tag);

    @SignalMethod
    void release();

    /** Lets the workflow method return; returns how many items the log holds. */
    @UpdateMethod
    int finish();

    /** How many times the append handler (not its validator) has run. */
    @QueryMethod
    int appendRuns();
  }

  public static class UpdateImpl implements UpdateWf {
    private final List<String> log = new ArrayList<>();
    private int appendRuns;
    private boolean released;
    private boolean done;

    @Override
    public String run() {
      boolean ok = Workflow.await(Duration.ofSeconds(60), () -> done);
      return (ok ? "done:" : "timed-out:") + String.join(",", log);
    }

    @Override
    public String append(String item) {
      appendRuns++;
      log.add(item);
      return String.join(",", log);
    }

    @Override
    public void validateAppend(String item) {
      if (item == null || item.isEmpty() || item.startsWith("bad")) {
        throw new IllegalArgumentException("append rejects item '" + item + "'");
      }
    }

    @Override
    public String refuse(String why) {
      throw io.temporal.failure.ApplicationFailure.newFailure(
          "update refused: " + why, "UpdateRefused", why);
    }

    @Override
    public String waitForRelease(String tag) {
      boolean ok = Workflow.await(Duration.ofSeconds(30), () -> released);
      return (ok ? "released:" : "timed-out:") + tag;
    }

    @Override
    public void release() {
      released = true;
    }

    @Override
    public int finish() {
      done = true;
      return log.size();
    }

    @Override
    public int appendRuns() {
      return appendRuns;
    }
  }
}
