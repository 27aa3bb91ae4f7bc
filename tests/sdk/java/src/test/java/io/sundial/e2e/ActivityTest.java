package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.CancelActivityWf;
import io.sundial.e2e.Workflows.FlakyWf;
import io.sundial.e2e.Workflows.HeartbeatRetryWf;
import io.sundial.e2e.Workflows.LocalActivityWf;
import io.sundial.e2e.Workflows.RetryWf;
import io.sundial.e2e.Workflows.SimpleActivityWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.RetryState;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

class ActivityTest extends E2EBase {

  @Test
  void activityWithOnlyStartToCloseTimeout(TestInfo info) {
    String id = wid(info);
    SimpleActivityWf wf = stub(SimpleActivityWf.class, id);
    WorkflowClient.start(wf::run, "abc");
    assertEquals("ABC/ABC2", result(wf, String.class));
    List<HistoryEvent> events = history(id);
    long scheduled = events.stream()
        .filter(e -> e.getEventType() == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).count();
    long completed = events.stream()
        .filter(e -> e.getEventType() == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED).count();
    assertEquals(2, scheduled);
    assertEquals(2, completed);
    HistoryEvent s = firstEvent(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
    assertEquals("Upper", s.getActivityTaskScheduledEventAttributes().getActivityType().getName());
    assertEquals(SuiteEnv.TASK_QUEUE,
        s.getActivityTaskScheduledEventAttributes().getTaskQueue().getName());
  }

  @Test
  void heartbeatDetailsSeenOnRetryAttempt(TestInfo info) {
    String id = wid(info);
    HeartbeatRetryWf wf = stub(HeartbeatRetryWf.class, id);
    WorkflowClient.start(wf::run, "progress-7");
    assertEquals("attempt=2;details=progress-7", result(wf, String.class));
  }

  @Test
  void workflowCancelsHeartbeatingActivity(TestInfo info) {
    String id = wid(info);
    CancelActivityWf wf = stub(CancelActivityWf.class, id);
    WorkflowClient.start(wf::run, id);
    assertEquals("activity-failure:CanceledFailure", result(wf, String.class));
    assertEquals("ActivityCanceledException", Activities.CANCEL_SEEN.get(id));
    List<EventType> types = eventTypes(history(id));
    assertTrue(types.contains(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED), types.toString());
    assertTrue(types.contains(EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED), types.toString());
  }

  @Test
  void doNotRetryTypeStopsRetries(TestInfo info) {
    String id = wid(info);
    RetryWf wf = stub(RetryWf.class, id);
    WorkflowClient.start(wf::run, id, "Fatal");
    WorkflowFailedException e =
        assertThrows(WorkflowFailedException.class, () -> result(wf, String.class));
    ActivityFailure af = causeOf(e, ActivityFailure.class);
    assertEquals("FailWithType", af.getActivityType());
    assertEquals(RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE, af.getRetryState());
    ApplicationFailure app = causeOf(af, ApplicationFailure.class);
    assertEquals("Fatal", app.getType());
    assertEquals("failing with Fatal", app.getOriginalMessage());
    assertEquals(1, Activities.attempts(id));
  }

  @Test
  void retryableTypeRetriesUntilMaximumAttempts(TestInfo info) {
    String id = wid(info);
    RetryWf wf = stub(RetryWf.class, id);
    WorkflowClient.start(wf::run, id, "Transient");
    WorkflowFailedException e =
        assertThrows(WorkflowFailedException.class, () -> result(wf, String.class));
    ActivityFailure af = causeOf(e, ActivityFailure.class);
    assertEquals(RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED, af.getRetryState());
    assertEquals("Transient", causeOf(af, ApplicationFailure.class).getType());
    assertEquals(4, Activities.attempts(id));
    HistoryEvent failed = firstEvent(history(id), EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED);
    assertEquals(4, historyStartedAttempt(id));
    assertEquals("Transient",
        failed.getActivityTaskFailedEventAttributes().getFailure().getApplicationFailureInfo().getType());
  }

  private static int historyStartedAttempt(String id) {
    return firstEvent(history(id), EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        .getActivityTaskStartedEventAttributes().getAttempt();
  }

  @Test
  void activityRetriesThenSucceeds(TestInfo info) {
    String id = wid(info);
    FlakyWf wf = stub(FlakyWf.class, id);
    WorkflowClient.start(wf::run, id, 3, false);
    assertEquals("ok@3/3", result(wf, String.class));
  }

  @Test
  void localActivitySucceeds(TestInfo info) {
    String id = wid(info);
    LocalActivityWf wf = stub(LocalActivityWf.class, id);
    WorkflowClient.start(wf::run, "la");
    assertEquals("LA+LOCAL", result(wf, String.class));
    List<HistoryEvent> events = history(id);
    long markers = events.stream()
        .filter(e -> e.getEventType() == EventType.EVENT_TYPE_MARKER_RECORDED).count();
    assertEquals(2, markers, eventTypes(events).toString());
    assertTrue(eventTypes(events).stream().noneMatch(t -> t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED));
  }

  @Test
  void localActivityRetriesThenSucceeds(TestInfo info) {
    String id = wid(info);
    FlakyWf wf = stub(FlakyWf.class, id);
    WorkflowClient.start(wf::run, id, 3, true);
    assertEquals("ok@3/3", result(wf, String.class));
    assertEquals(3, Activities.attempts(id));
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        history(id).get(history(id).size() - 1).getEventType());
  }
}
