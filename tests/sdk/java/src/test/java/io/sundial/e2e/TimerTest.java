package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.ContinueAsNewWf;
import io.sundial.e2e.Workflows.TimerWf;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionDescription;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

class TimerTest extends E2EBase {

  @Test
  void workflowSleepFiresTimer(TestInfo info) {
    String id = wid(info);
    TimerWf wf = stub(TimerWf.class, id);
    long t0 = System.currentTimeMillis();
    WorkflowClient.start(wf::run, "sleep");
    String r = result(wf, String.class);
    long wall = System.currentTimeMillis() - t0;
    long elapsed = Long.parseLong(r.substring("elapsed=".length()));
    assertTrue(elapsed >= 1000 && elapsed < 15_000, r);
    assertTrue(wall >= 1000, "wall " + wall);
    List<HistoryEvent> events = history(id);
    HistoryEvent started = firstEvent(events, EventType.EVENT_TYPE_TIMER_STARTED);
    assertEquals(1, started.getTimerStartedEventAttributes().getStartToFireTimeout().getSeconds());
    HistoryEvent fired = firstEvent(events, EventType.EVENT_TYPE_TIMER_FIRED);
    assertEquals(started.getEventId(), fired.getTimerFiredEventAttributes().getStartedEventId());
    assertEquals(started.getTimerStartedEventAttributes().getTimerId(),
        fired.getTimerFiredEventAttributes().getTimerId());
  }

  @Test
  void cancelledTimerDoesNotFire(TestInfo info) {
    String id = wid(info);
    TimerWf wf = stub(TimerWf.class, id);
    WorkflowClient.start(wf::run, "cancel");
    assertEquals("canceled", result(wf, String.class));
    List<HistoryEvent> events = history(id);
    HistoryEvent longTimer = events.stream()
        .filter(e -> e.getEventType() == EventType.EVENT_TYPE_TIMER_STARTED)
        .filter(e -> e.getTimerStartedEventAttributes().getStartToFireTimeout().getSeconds() == 60)
        .findFirst().orElseThrow(() -> new AssertionError("no 60 s timer in " + eventTypes(events)));
    HistoryEvent canceled = firstEvent(events, EventType.EVENT_TYPE_TIMER_CANCELED);
    assertEquals(longTimer.getTimerStartedEventAttributes().getTimerId(),
        canceled.getTimerCanceledEventAttributes().getTimerId());
    assertEquals(longTimer.getEventId(), canceled.getTimerCanceledEventAttributes().getStartedEventId());
    long fired = events.stream().filter(e -> e.getEventType() == EventType.EVENT_TYPE_TIMER_FIRED).count();
    assertEquals(1, fired, "only the 300 ms timer fires");
  }

  @Test
  void continueAsNewRunsNTimes(TestInfo info) {
    String id = wid(info);
    ContinueAsNewWf wf = stub(ContinueAsNewWf.class, id);
    WorkflowExecution first = WorkflowClient.start(wf::run, 5, 0);
    assertEquals("acc=15;continued=true", result(wf, String.class));

    String viaFirstRun = result(client()
        .newUntypedWorkflowStub(id, Optional.of(first.getRunId()), Optional.empty()), String.class);
    assertEquals("acc=15;continued=true", viaFirstRun, "result through the first run follows the chain");

    WorkflowExecutionDescription firstRun = client()
        .newUntypedWorkflowStub(id, Optional.of(first.getRunId()), Optional.empty()).describe();
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
        firstRun.getStatus());
    WorkflowExecutionDescription last = client().newUntypedWorkflowStub(id).describe();
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, last.getStatus());
    assertTrue(!last.getExecution().getRunId().equals(first.getRunId()));
    assertEquals(first.getRunId(), last.getFirstRunId());

    List<HistoryEvent> firstHistory = client().fetchHistory(id, first.getRunId()).getEvents();
    HistoryEvent can = firstHistory.get(firstHistory.size() - 1);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, can.getEventType());
    String next = can.getWorkflowExecutionContinuedAsNewEventAttributes().getNewExecutionRunId();
    List<HistoryEvent> secondHistory = client().fetchHistory(id, next).getEvents();
    assertEquals(first.getRunId(), secondHistory.get(0).getWorkflowExecutionStartedEventAttributes()
        .getContinuedExecutionRunId());
    assertEquals(first.getRunId(), secondHistory.get(0).getWorkflowExecutionStartedEventAttributes()
        .getFirstExecutionRunId());
  }
}
