package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.sundial.e2e.Workflows.UpdateWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.api.history.v1.WorkflowExecutionUpdateAcceptedEventAttributes;
import io.temporal.api.history.v1.WorkflowExecutionUpdateCompletedEventAttributes;
import io.temporal.api.update.v1.Outcome;
import io.temporal.client.UpdateOptions;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowStub;
import io.temporal.client.WorkflowUpdateException;
import io.temporal.client.WorkflowUpdateHandle;
import io.temporal.client.WorkflowUpdateStage;
import io.temporal.common.converter.DefaultDataConverter;
import io.temporal.failure.ApplicationFailure;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Workflow updates through the SDK: UpdateWorkflowExecution, PollWorkflowExecutionUpdate, the
 * update protocol messages in workflow tasks and speculative workflow tasks (a rejected update
 * leaves no trace in history). Update-with-start is in {@link UpdateWithStartTest}.
 */
class WorkflowUpdateTest extends E2EBase {
  private static final EventType ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED;
  private static final EventType COMPLETED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED;

  /** Starts an UpdateWf and returns a typed stub bound to its workflow id. */
  private static UpdateWf startWorkflow(String id) {
    UpdateWf wf = stub(UpdateWf.class, id);
    WorkflowClient.start(wf::run);
    return client().newWorkflowStub(UpdateWf.class, id);
  }

  /** Waits until the first workflow task has completed, so the run is idle and history stable. */
  private static void awaitFirstTaskCompleted(String id) {
    eventually(10, "first workflow task completed",
        () -> eventTypes(history(id)).contains(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED));
  }

  private static String finishAndResult(String id, int expectedLogSize) {
    UpdateWf running = client().newWorkflowStub(UpdateWf.class, id);
    assertEquals(expectedLogSize, within(running::finish), "finish returns the log size");
    return result(client().newUntypedWorkflowStub(id), String.class);
  }

  private static List<HistoryEvent> ofType(List<HistoryEvent> events, EventType type) {
    return events.stream().filter(e -> e.getEventType() == type).collect(Collectors.toList());
  }

  private static long count(List<HistoryEvent> events, EventType type) {
    return events.stream().filter(e -> e.getEventType() == type).count();
  }

  private static String acceptedName(HistoryEvent e) {
    return e.getWorkflowExecutionUpdateAcceptedEventAttributes().getAcceptedRequest().getInput()
        .getName();
  }

  private static String acceptedId(HistoryEvent e) {
    return e.getWorkflowExecutionUpdateAcceptedEventAttributes().getAcceptedRequest().getMeta()
        .getUpdateId();
  }

  private static <T> T successValue(HistoryEvent completed, Class<T> type) {
    Outcome o = completed.getWorkflowExecutionUpdateCompletedEventAttributes().getOutcome();
    assertTrue(o.hasSuccess(), "update outcome is a success: " + o);
    return DefaultDataConverter.STANDARD_INSTANCE.fromPayload(
        o.getSuccess().getPayloads(0), type, type);
  }

  @Test
  void typedStubUpdateReturnsResult(TestInfo info) {
    String id = wid(info);
    UpdateWf running = startWorkflow(id);
    assertEquals("a", within(() -> running.append("a")));
    assertEquals("a,b", within(() -> running.append("b")));
    assertEquals(2, within(running::appendRuns));
    assertEquals("done:a,b", finishAndResult(id, 2));

    List<HistoryEvent> events = history(id);
    List<HistoryEvent> accepted = ofType(events, ACCEPTED);
    List<HistoryEvent> completed = ofType(events, COMPLETED);
    assertEquals(List.of("append", "append", "finish"),
        accepted.stream().map(WorkflowUpdateTest::acceptedName).collect(Collectors.toList()));
    assertEquals(3, completed.size(), eventTypes(events).toString());
    for (int i = 0; i < 3; i++) {
      WorkflowExecutionUpdateAcceptedEventAttributes a =
          accepted.get(i).getWorkflowExecutionUpdateAcceptedEventAttributes();
      WorkflowExecutionUpdateCompletedEventAttributes c =
          completed.get(i).getWorkflowExecutionUpdateCompletedEventAttributes();
      assertFalse(a.getAcceptedRequest().getMeta().getUpdateId().isEmpty(), "update id is set");
      assertEquals(a.getProtocolInstanceId(), a.getAcceptedRequest().getMeta().getUpdateId());
      assertEquals(a.getAcceptedRequest().getMeta().getUpdateId(), c.getMeta().getUpdateId(),
          "completed event " + i + " belongs to accepted event " + i);
      assertEquals(accepted.get(i).getEventId(), c.getAcceptedEventId());
      assertTrue(completed.get(i).getEventId() > accepted.get(i).getEventId());
    }
    assertEquals("a", payloadString(accepted.get(0).getWorkflowExecutionUpdateAcceptedEventAttributes()
        .getAcceptedRequest().getInput().getArgs().getPayloads(0)));
    assertEquals("a", successValue(completed.get(0), String.class));
    assertEquals("a,b", successValue(completed.get(1), String.class));
    assertEquals(2, successValue(completed.get(2), Integer.class));
  }

  @Test
  void validatorRejectionLeavesHistoryUnchanged(TestInfo info) {
    String id = wid(info);
    UpdateWf running = startWorkflow(id);
    awaitFirstTaskCompleted(id);
    List<EventType> before = eventTypes(history(id));

    WorkflowUpdateException e =
        assertThrows(WorkflowUpdateException.class, () -> within(() -> running.append("bad-item")));
    assertEquals("append", e.GetUpdateName());
    ApplicationFailure f = causeOf(e, ApplicationFailure.class);
    assertEquals("java.lang.IllegalArgumentException", f.getType());
    assertTrue(f.getOriginalMessage().contains("append rejects item 'bad-item'"),
        f.getOriginalMessage());

    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    WorkflowUpdateException unknown = assertThrows(WorkflowUpdateException.class,
        () -> within(() -> untyped.update("noSuchUpdate", String.class, "x")));
    assertEquals("noSuchUpdate", unknown.GetUpdateName());
    String text = String.valueOf(causeOf(unknown, ApplicationFailure.class).getOriginalMessage());
    assertTrue(text.contains("noSuchUpdate"), text);

    assertEquals(before, eventTypes(history(id)), "rejected updates write no events");
    assertEquals(0, within(running::appendRuns), "the handler of a rejected update never runs");
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
        untyped.describe().getStatus());

    assertEquals("ok", within(() -> running.append("ok")), "the rejected item is not in the log");
    assertEquals("done:ok", finishAndResult(id, 1));
    List<HistoryEvent> events = history(id);
    assertEquals(List.of("append", "finish"), ofType(events, ACCEPTED).stream()
        .map(WorkflowUpdateTest::acceptedName).collect(Collectors.toList()));
    assertEquals(2, count(events, COMPLETED));
  }

  @Test
  void handlerApplicationFailureSurfacesWithType(TestInfo info) {
    String id = wid(info);
    UpdateWf running = startWorkflow(id);
    WorkflowUpdateException e =
        assertThrows(WorkflowUpdateException.class, () -> within(() -> running.refuse("nope")));
    assertEquals("refuse", e.GetUpdateName());
    ApplicationFailure f = causeOf(e, ApplicationFailure.class);
    assertEquals("UpdateRefused", f.getType());
    assertEquals("update refused: nope", f.getOriginalMessage());
    assertEquals("nope", f.getDetails().get(String.class));

    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
        client().newUntypedWorkflowStub(id).describe().getStatus(),
        "a failed update does not fail the workflow");
    List<HistoryEvent> events = history(id);
    HistoryEvent accepted = firstEvent(events, ACCEPTED);
    assertEquals("refuse", acceptedName(accepted));
    Outcome o = firstEvent(events, COMPLETED).getWorkflowExecutionUpdateCompletedEventAttributes()
        .getOutcome();
    assertTrue(o.hasFailure(), "outcome is a failure: " + o);
    assertEquals("update refused: nope", o.getFailure().getMessage());
    assertEquals("UpdateRefused", o.getFailure().getApplicationFailureInfo().getType());

    assertEquals("after", within(() -> running.append("after")));
    assertEquals("done:after", finishAndResult(id, 1));
  }

  @Test
  void startUpdateAcceptedThenAwaitResult(TestInfo info) throws Exception {
    String id = wid(info);
    startWorkflow(id);
    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    WorkflowUpdateHandle<String> handle = within(() -> untyped.startUpdate(
        "waitForRelease", WorkflowUpdateStage.ACCEPTED, String.class, "t1"));
    assertFalse(handle.getId().isEmpty(), "the handle carries the update id");
    assertEquals(id, handle.getExecution().getWorkflowId());

    List<HistoryEvent> events = history(id);
    assertEquals(List.of(handle.getId()),
        ofType(events, ACCEPTED).stream().map(WorkflowUpdateTest::acceptedId)
            .collect(Collectors.toList()),
        "ACCEPTED stage returns once the acceptance is in history");
    assertEquals(0, count(events, COMPLETED), "the handler is still waiting");

    CompletableFuture<String> result = handle.getResultAsync();
    assertFalse(result.isDone(), "no outcome before the handler is released");
    untyped.signal("release");
    assertEquals("released:t1", result.get(RESULT_TIMEOUT_S, TimeUnit.SECONDS));

    WorkflowUpdateHandle<String> again =
        client().newUntypedWorkflowStub(id).getUpdateHandle(handle.getId(), String.class);
    assertEquals("released:t1", again.getResultAsync().get(RESULT_TIMEOUT_S, TimeUnit.SECONDS),
        "polling a completed update by id gives its outcome");

    assertEquals("done:", finishAndResult(id, 0));
    events = history(id);
    HistoryEvent completed = ofType(events, COMPLETED).get(0);
    assertEquals(handle.getId(),
        completed.getWorkflowExecutionUpdateCompletedEventAttributes().getMeta().getUpdateId());
    assertEquals("released:t1", successValue(completed, String.class));
    assertTrue(eventTypes(events).indexOf(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        < events.indexOf(completed), "the update completes after the release signal");
  }

  @Test
  void sameUpdateIdReturnsFirstOutcome(TestInfo info) {
    String id = wid(info);
    UpdateWf running = startWorkflow(id);
    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    String updateId = "dup-" + id;
    UpdateOptions<String> completedStage = UpdateOptions.newBuilder(String.class)
        .setUpdateName("append").setUpdateId(updateId)
        .setWaitForStage(WorkflowUpdateStage.COMPLETED).build();

    assertEquals("first", within(() -> untyped.startUpdate(completedStage, "first")
        .getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)));
    assertEquals("first", within(() -> untyped.startUpdate(completedStage, "second")
        .getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)),
        "a repeated update id gives the first outcome");
    UpdateOptions<String> acceptedStage = completedStage.toBuilder()
        .setWaitForStage(WorkflowUpdateStage.ACCEPTED).build();
    WorkflowUpdateHandle<String> h = within(() -> untyped.startUpdate(acceptedStage, "third"));
    assertEquals(updateId, h.getId());
    assertEquals("first", within(() -> h.getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)));
    assertEquals(1, within(running::appendRuns), "the handler ran once");

    assertEquals("done:first", finishAndResult(id, 1));
    List<HistoryEvent> events = history(id);
    List<HistoryEvent> accepted = ofType(events, ACCEPTED).stream()
        .filter(e -> updateId.equals(acceptedId(e))).collect(Collectors.toList());
    assertEquals(1, accepted.size(), eventTypes(events).toString());
    assertEquals("first", payloadString(accepted.get(0)
        .getWorkflowExecutionUpdateAcceptedEventAttributes().getAcceptedRequest().getInput()
        .getArgs().getPayloads(0)));
    assertEquals(1, ofType(events, COMPLETED).stream()
        .filter(e -> updateId.equals(
            e.getWorkflowExecutionUpdateCompletedEventAttributes().getMeta().getUpdateId()))
        .count());
  }

  @Test
  void updateLetsWorkflowCompleteThenClosedRunRefusesNewUpdates(TestInfo info) {
    String id = wid(info);
    UpdateWf running = startWorkflow(id);
    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    String updateId = "x-" + id;
    UpdateOptions<String> append = UpdateOptions.newBuilder(String.class)
        .setUpdateName("append").setUpdateId(updateId)
        .setWaitForStage(WorkflowUpdateStage.COMPLETED).build();
    assertEquals("x", within(() -> untyped.startUpdate(append, "x")
        .getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)));
    assertEquals(1, within(running::appendRuns));
    assertEquals("done:x", finishAndResult(id, 1));

    List<HistoryEvent> events = history(id);
    List<EventType> types = eventTypes(events);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, types.get(types.size() - 1));
    assertEquals(2, count(events, ACCEPTED), types.toString());
    assertEquals(2, count(events, COMPLETED), types.toString());
    assertEquals("done:x", payloadString(events.get(events.size() - 1)
        .getWorkflowExecutionCompletedEventAttributes().getResult().getPayloads(0)));

    // A new update on the closed run: Temporal answers NOT_FOUND "workflow execution already
    // completed", which the SDK raises as WorkflowNotFoundException.
    WorkflowNotFoundException nf = assertThrows(WorkflowNotFoundException.class,
        () -> within(() -> untyped.update("append", String.class, "late")));
    StatusRuntimeException sre = causeOf(nf, StatusRuntimeException.class);
    assertEquals(Status.Code.NOT_FOUND, sre.getStatus().getCode());
    assertTrue(String.valueOf(sre.getStatus().getDescription()).contains("already completed"),
        String.valueOf(sre.getStatus().getDescription()));

    // The id of an update that completed before the close still gives its outcome.
    assertEquals("x", within(() -> untyped.startUpdate(append, "again")
        .getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)));
    assertEquals("x", within(() -> untyped.getUpdateHandle(updateId, String.class)
        .getResult(RESULT_TIMEOUT_S, TimeUnit.SECONDS)));
    assertEquals(types, eventTypes(history(id)), "nothing is written to the closed run");
  }
}
