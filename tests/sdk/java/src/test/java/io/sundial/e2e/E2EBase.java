package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.temporal.api.common.v1.Payload;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.common.converter.DefaultDataConverter;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Collectors;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.extension.ExtendWith;

/** Base of every test class: the shared environment and small helpers. */
@ExtendWith(SuiteEnv.Extension.class)
abstract class E2EBase {
  /** Upper bound for any one workflow result. */
  static final long RESULT_TIMEOUT_S = 30;

  static WorkflowClient client() {
    return SuiteEnv.get().client;
  }

  static String target() {
    return SuiteEnv.get().server.target;
  }

  static String wid(TestInfo info) {
    String name = info.getTestMethod().map(m -> m.getName()).orElse("wf");
    return "java-" + name + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  static WorkflowOptions.Builder opts(String workflowId) {
    return WorkflowOptions.newBuilder().setWorkflowId(workflowId).setTaskQueue(SuiteEnv.TASK_QUEUE);
  }

  static <T> T stub(Class<T> iface, String workflowId) {
    return client().newWorkflowStub(iface, opts(workflowId).build());
  }

  static <T> T stub(Class<T> iface, WorkflowOptions options) {
    return client().newWorkflowStub(iface, options);
  }

  /** The result of a started workflow, waiting at most RESULT_TIMEOUT_S. */
  static <R> R result(Object typedStub, Class<R> type) {
    return result(WorkflowStub.fromTyped(typedStub), type);
  }

  static <R> R result(WorkflowStub stub, Class<R> type) {
    try {
      return stub.getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS, type);
    } catch (TimeoutException e) {
      return fail("no workflow result within " + RESULT_TIMEOUT_S + " s", e);
    }
  }

  static List<HistoryEvent> history(String workflowId) {
    return client().fetchHistory(workflowId).getEvents();
  }

  static List<EventType> eventTypes(List<HistoryEvent> events) {
    return events.stream().map(HistoryEvent::getEventType).collect(Collectors.toList());
  }

  static HistoryEvent firstEvent(List<HistoryEvent> events, EventType type) {
    return events.stream().filter(e -> e.getEventType() == type).findFirst()
        .orElseGet(() -> fail("no " + type + " in history " + eventTypes(events)));
  }

  static String payloadString(Payload p) {
    return DefaultDataConverter.STANDARD_INSTANCE.fromPayload(p, String.class, String.class);
  }

  /** Polls {@code cond} every 100 ms for up to {@code seconds}. */
  static void eventually(long seconds, String what, java.util.function.BooleanSupplier cond) {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      if (cond.getAsBoolean()) {
        return;
      }
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    assertTrue(cond.getAsBoolean(), what + " (waited " + seconds + " s)");
  }

  /** Runs blocking SDK calls that have no deadline of their own (an update waiting for its outcome). */
  private static final ExecutorService CALLS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "java-e2e-call");
    t.setDaemon(true);
    return t;
  });

  /** {@code call()} on another thread, waiting at most RESULT_TIMEOUT_S; rethrows what it throws. */
  static <T> T within(Callable<T> call) {
    Future<T> f = CALLS.submit(call);
    try {
      return f.get(RESULT_TIMEOUT_S, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      f.cancel(true);
      return fail("call gave no answer within " + RESULT_TIMEOUT_S + " s", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return fail("interrupted", e);
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof RuntimeException) {
        throw (RuntimeException) c;
      }
      if (c instanceof Error) {
        throw (Error) c;
      }
      return fail("call failed", c);
    }
  }

  static <T extends Throwable> T causeOf(Throwable t, Class<T> type) {
    Throwable c = t.getCause();
    assertTrue(type.isInstance(c), "expected cause " + type.getSimpleName() + " of "
        + t.getClass().getSimpleName() + ", got " + c);
    return type.cast(c);
  }
}
