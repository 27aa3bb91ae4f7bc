package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.sundial.e2e.Workflows.UpdateWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.enums.v1.WorkflowIdConflictPolicy;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.api.history.v1.WorkflowExecutionUpdateAcceptedEventAttributes;
import io.temporal.api.history.v1.WorkflowExecutionUpdateCompletedEventAttributes;
import io.temporal.api.workflow.v1.WorkflowExecutionInfo;
import io.temporal.client.UpdateOptions;
import io.temporal.client.WithStartWorkflowOperation;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowServiceException;
import io.temporal.client.WorkflowStub;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.client.WorkflowUpdateHandle;
import io.temporal.client.WorkflowUpdateStage;
import io.temporal.failure.ApplicationFailure;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.function.Executable;

/**
 * Update-with-start through the SDK (ExecuteMultiOperation with [StartWorkflow, UpdateWorkflow]):
 * a new workflow id starts the run with the update on its first workflow task, USE_EXISTING sends
 * the update to the running (or the closed) run, FAIL gives already-started, a validator rejection
 * gives the update-failed error. Uses {@link UpdateWf}.
 */
class UpdateWithStartTest extends E2EBase {
  private static final EventType ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED;
  private static final EventType COMPLETED =
      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED;
  private static final WorkflowIdConflictPolicy USE_EXISTING =
      WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING;
  private static final WorkflowIdConflictPolicy FAIL =
      WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL;

  /** The history of a run whose first workflow task carried an accepted and completed update. */
  private static final List<EventType> FIRST_TASK_UPDATE = List.of(
      EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      ACCEPTED,
      COMPLETED);

  /** A fresh typed stub (one per call: a start operation is used once) with the policy. */
  private static UpdateWf stubWith(String id, WorkflowIdConflictPolicy policy) {
    return client().newWorkflowStub(UpdateWf.class,
        opts(id).setWorkflowIdConflictPolicy(policy).build());
  }

  private static <R> UpdateOptions<R> completedStage(String updateId) {
    return UpdateOptions.<R>newBuilder().setUpdateId(updateId)
        .setWaitForStage(WorkflowUpdateStage.COMPLETED).build();
  }

  /** Update-with-start of {@code append(item)} waiting for COMPLETED; returns the handle. */
  private static WorkflowUpdateHandle<String> appendWithStart(
      String id, WorkflowIdConflictPolicy policy, String updateId, String item) {
    UpdateWf wf = stubWith(id, policy);
    WithStartWorkflowOperation<String> start = new WithStartWorkflowOperation<>(wf::run);
    return within(() -> WorkflowClient.startUpdateWithStart(
        wf::append, item, UpdateWithStartTest.<String>completedStage(updateId), start));
  }

  /** Update-with-start of {@code finish()} with USE_EXISTING; returns the update's result. */
  private static int finishWithStart(String id, String updateId) {
    UpdateWf wf = stubWith(id, USE_EXISTING);
    WithStartWorkflowOperation<String> start = new WithStartWorkflowOperation<>(wf::run);
    return within(() -> WorkflowClient.executeUpdateWithStart(
        wf::finish, UpdateWithStartTest.<Integer>completedStage(updateId), start));
  }

  private static String resultOf(WorkflowUpdateHandle<String> h) {
    return within(() -> h.getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS));
  }

  private static String runIdOf(WorkflowUpdateHandle<?> h) {
    return h.getExecution().getRunId();
  }

  private static List<HistoryEvent> runHistory(String id, String runId) {
    return client().fetchHistory(id, runId).getEvents();
  }

  private static WorkflowExecutionInfo current(String id) {
    return client().newUntypedWorkflowStub(id).describe().getWorkflowExecutionInfo();
  }

  private static List<String> updateIds(List<HistoryEvent> events, EventType type) {
    return events.stream().filter(e -> e.getEventType() == type)
        .map(e -> type == ACCEPTED
            ? e.getWorkflowExecutionUpdateAcceptedEventAttributes().getAcceptedRequest().getMeta()
                .getUpdateId()
            : e.getWorkflowExecutionUpdateCompletedEventAttributes().getMeta().getUpdateId())
        .collect(Collectors.toList());
  }

  private static long count(List<HistoryEvent> events, EventType type) {
    return events.stream().filter(e -> e.getEventType() == type).count();
  }

  private static int appendRuns(String id) {
    return within(() -> client().newWorkflowStub(UpdateWf.class, id).appendRuns());
  }

  private static void assertFirstTaskCarriedUpdate(List<HistoryEvent> events, String updateId,
      String name) {
    List<EventType> types = eventTypes(events);
    assertTrue(types.size() >= FIRST_TASK_UPDATE.size(), types.toString());
    assertEquals(FIRST_TASK_UPDATE, types.subList(0, FIRST_TASK_UPDATE.size()),
        "the update rode on the first workflow task: " + types);
    WorkflowExecutionUpdateAcceptedEventAttributes a =
        events.get(4).getWorkflowExecutionUpdateAcceptedEventAttributes();
    assertEquals(updateId, a.getProtocolInstanceId());
    assertEquals(updateId, a.getAcceptedRequest().getMeta().getUpdateId());
    assertEquals(name, a.getAcceptedRequest().getInput().getName());
    WorkflowExecutionUpdateCompletedEventAttributes c =
        events.get(5).getWorkflowExecutionUpdateCompletedEventAttributes();
    assertEquals(events.get(4).getEventId(), c.getAcceptedEventId());
    assertEquals(updateId, c.getMeta().getUpdateId());
    assertTrue(c.getOutcome().hasSuccess(), "outcome is a success: " + c.getOutcome());
  }

  /** {@code call} fails with the update-failed error carrying the append validator's rejection. */
  private static WorkflowUpdateException assertRejected(Executable call, String item) {
    WorkflowUpdateException e = assertThrows(WorkflowUpdateException.class, call);
    assertEquals("append", e.GetUpdateName());
    ApplicationFailure f = causeOf(e, ApplicationFailure.class);
    assertEquals("java.lang.IllegalArgumentException", f.getType());
    assertTrue(f.getOriginalMessage().contains("append rejects item '" + item + "'"),
        f.getOriginalMessage());
    return e;
  }

  @Test
  void startsThenUpdatesExistingRun(TestInfo info) {
    String id = wid(info);

    // A new workflow id: the run starts and the update rides on its first workflow task.
    WorkflowUpdateHandle<String> h = appendWithStart(id, USE_EXISTING, "uws-a", "a");
    assertEquals("a", resultOf(h));
    assertEquals("uws-a", h.getId());
    assertEquals(id, h.getExecution().getWorkflowId());
    String runId = runIdOf(h);
    assertFalse(runId.isEmpty(), "the handle names the run");
    WorkflowExecutionInfo info1 = current(id);
    assertEquals(runId, info1.getExecution().getRunId());
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING, info1.getStatus());
    assertFirstTaskCarriedUpdate(runHistory(id, runId), "uws-a", "append");

    // USE_EXISTING on the running workflow: the same run, the update applied to it.
    UpdateWf wf = stubWith(id, USE_EXISTING);
    WithStartWorkflowOperation<String> start = new WithStartWorkflowOperation<>(wf::run);
    assertEquals("a,b", within(() -> WorkflowClient.executeUpdateWithStart(
        wf::append, "b", UpdateWithStartTest.<String>completedStage("uws-b"), start)));
    assertEquals(runId, current(id).getExecution().getRunId(), "no new run");
    assertEquals(1, count(runHistory(id, runId), EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED));

    // The first update id again, through the untyped stub: its stored outcome, the handler not
    // run again.
    WorkflowStub untyped = client().newUntypedWorkflowStub("UpdateWf",
        opts(id).setWorkflowIdConflictPolicy(USE_EXISTING).build());
    UpdateOptions<String> again = UpdateOptions.newBuilder(String.class).setUpdateName("append")
        .setUpdateId("uws-a").setWaitForStage(WorkflowUpdateStage.COMPLETED).build();
    WorkflowUpdateHandle<String> h2 =
        within(() -> untyped.startUpdateWithStart(again, new Object[] {"zzz"}, new Object[0]));
    assertEquals("a", resultOf(h2), "a repeated update id gives the stored outcome");
    assertEquals(runId, runIdOf(h2));
    assertEquals(2, appendRuns(id), "the handler ran once per distinct update id");

    // FAIL on the running workflow: already-started, and the update is not applied. Java SDK
    // 1.38 raises the start operation's ALREADY_EXISTS status as a WorkflowServiceException (not
    // WorkflowExecutionAlreadyStarted, which it uses for a plain start).
    WorkflowServiceException already = assertThrows(WorkflowServiceException.class,
        () -> appendWithStart(id, FAIL, "uws-fail", "never"));
    assertEquals(id, already.getExecution().getWorkflowId());
    StatusRuntimeException sre = causeOf(already, StatusRuntimeException.class);
    assertEquals(Status.Code.ALREADY_EXISTS, sre.getStatus().getCode(), sre.toString());
    assertTrue(String.valueOf(sre.getStatus().getDescription()).contains(runId),
        "the status names the running run: " + sre.getStatus().getDescription());
    assertEquals(2, appendRuns(id));
    assertFalse(updateIds(runHistory(id, runId), ACCEPTED).contains("uws-fail"));

    // The validator rejects: the update-failed error, and history does not change.
    List<EventType> before = eventTypes(runHistory(id, runId));
    UpdateWf rejecting = stubWith(id, USE_EXISTING);
    WithStartWorkflowOperation<String> rejectingStart =
        new WithStartWorkflowOperation<>(rejecting::run);
    WorkflowUpdateException rejected = assertRejected(() -> within(() -> WorkflowClient
        .executeUpdateWithStart(rejecting::append, "bad-item",
            UpdateWithStartTest.<String>completedStage("uws-bad"), rejectingStart)), "bad-item");
    assertEquals("uws-bad", rejected.GetUpdateId());
    assertEquals(runId, rejected.getExecution().getRunId());
    assertEquals(before, eventTypes(runHistory(id, runId)), "a rejected update writes no events");
    assertEquals(2, appendRuns(id), "the handler of a rejected update never runs");
    // A rejected update is not remembered: its id can be used again.
    assertEquals("a,b,c", resultOf(appendWithStart(id, USE_EXISTING, "uws-bad", "c")));

    // finish through update-with-start lets the run complete.
    assertEquals(3, finishWithStart(id, "uws-finish"));
    assertEquals("done:a,b,c", result(client().newUntypedWorkflowStub(id), String.class));
    List<HistoryEvent> events = runHistory(id, runId);
    List<String> want = List.of("uws-a", "uws-b", "uws-bad", "uws-finish");
    assertEquals(want, updateIds(events, ACCEPTED));
    assertEquals(want, updateIds(events, COMPLETED));
    assertEquals(1, count(events, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED));
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        events.get(events.size() - 1).getEventType());
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
        current(id).getStatus());
  }

  @Test
  void closedRunGivesStoredOutcomeOrANewRun(TestInfo info) {
    String id = wid(info);
    WorkflowUpdateHandle<String> h = appendWithStart(id, USE_EXISTING, "uws-a", "a");
    assertEquals("a", resultOf(h));
    String runId = runIdOf(h);
    assertEquals(1, finishWithStart(id, "uws-finish"));
    assertEquals("done:a", result(client().newUntypedWorkflowStub(id), String.class));
    List<EventType> closed = eventTypes(runHistory(id, runId));

    // An update id the closed run completed: its outcome from that run, no new run.
    WorkflowUpdateHandle<String> again = appendWithStart(id, USE_EXISTING, "uws-a", "other");
    assertEquals("a", resultOf(again));
    assertEquals(runId, runIdOf(again));
    WorkflowExecutionInfo now = current(id);
    assertEquals(runId, now.getExecution().getRunId(), "no new run");
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, now.getStatus());
    assertEquals(closed, eventTypes(runHistory(id, runId)), "nothing is written to the closed run");

    // A new update id: a new run (the default reuse policy allows it), the update on its first
    // task.
    WorkflowUpdateHandle<String> next = appendWithStart(id, USE_EXISTING, "uws-next", "n");
    assertEquals("n", resultOf(next));
    String nextRun = runIdOf(next);
    assertNotEquals(runId, nextRun);
    assertEquals(nextRun, current(id).getExecution().getRunId());
    assertFirstTaskCarriedUpdate(runHistory(id, nextRun), "uws-next", "append");
    assertEquals(1, finishWithStart(id, "uws-next-finish"));
    assertEquals("done:n", result(client().newUntypedWorkflowStub(id), String.class));
  }

  @Test
  void rejectedUpdateStillStartsTheWorkflow(TestInfo info) {
    String id = wid(info);
    // startUpdateWithStart waiting for COMPLETED returns a handle; the rejection is its outcome.
    WorkflowUpdateHandle<String> h = appendWithStart(id, USE_EXISTING, "uws-bad", "bad-first");
    String runId = runIdOf(h);
    assertFalse(runId.isEmpty(), "the handle names the started run");
    WorkflowUpdateException rejected = assertRejected(() -> resultOf(h), "bad-first");
    assertEquals("uws-bad", rejected.GetUpdateId());
    WorkflowExecutionInfo started = current(id);
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING, started.getStatus());
    assertEquals(runId, started.getExecution().getRunId());
    assertEquals(List.of(
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_TIMER_STARTED), eventTypes(runHistory(id, runId)),
        "the run started (its first task starts run()'s 60 s await timer); the rejected update"
            + " left no events");
    assertEquals(0, appendRuns(id));

    assertEquals(0, finishWithStart(id, "uws-finish"));
    assertEquals("done:", result(client().newUntypedWorkflowStub(id), String.class));
    assertEquals(runId, current(id).getExecution().getRunId());
    assertEquals(List.of("uws-finish"), updateIds(runHistory(id, runId), ACCEPTED));
  }
}
