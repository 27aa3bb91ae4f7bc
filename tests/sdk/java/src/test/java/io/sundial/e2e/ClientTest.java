package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.sundial.e2e.Workflows.BlockingWf;
import io.sundial.e2e.Workflows.FailWf;
import io.sundial.e2e.Workflows.SimpleActivityImpl;
import io.sundial.e2e.Workflows.SimpleActivityWf;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.client.WorkflowExecutionAlreadyStarted;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowServiceException;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowStub;
import io.temporal.api.enums.v1.WorkflowIdReusePolicy;
import io.temporal.common.WorkflowExecutionHistory;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.failure.TerminatedFailure;
import io.temporal.testing.WorkflowReplayer;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/** Client-side operations: cancel, terminate, failures, history, id conflicts, namespaces. */
class ClientTest extends E2EBase {

  private static WorkflowStub startBlocking(String id) {
    BlockingWf wf = stub(BlockingWf.class, id);
    WorkflowClient.start(wf::run);
    return WorkflowStub.fromTyped(wf);
  }

  @Test
  void cancelFromClient(TestInfo info) {
    String id = wid(info);
    WorkflowStub s = startBlocking(id);
    eventually(10, "first workflow task completed", () -> history(id).size() >= 3);
    s.cancel();
    WorkflowFailedException e = assertThrows(WorkflowFailedException.class, () -> result(s, String.class));
    causeOf(e, CanceledFailure.class);
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED, s.describe().getStatus());
    List<EventType> types = eventTypes(history(id));
    assertTrue(types.contains(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED), types.toString());
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, types.get(types.size() - 1));
  }

  @Test
  void terminateFromClient(TestInfo info) {
    String id = wid(info);
    WorkflowStub s = startBlocking(id);
    s.terminate("terminated by java test", "extra-detail");
    WorkflowFailedException e = assertThrows(WorkflowFailedException.class, () -> result(s, String.class));
    causeOf(e, TerminatedFailure.class);
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_TERMINATED, s.describe().getStatus());
    List<HistoryEvent> events = history(id);
    HistoryEvent last = events.get(events.size() - 1);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, last.getEventType());
    assertEquals("terminated by java test", last.getWorkflowExecutionTerminatedEventAttributes().getReason());
    assertEquals("extra-detail",
        payloadString(last.getWorkflowExecutionTerminatedEventAttributes().getDetails().getPayloads(0)));
  }

  @Test
  void terminateOfClosedWorkflowIsNotFound(TestInfo info) {
    String id = wid(info);
    SimpleActivityWf wf = stub(SimpleActivityWf.class, id);
    WorkflowClient.start(wf::run, "closed");
    assertEquals("CLOSED/CLOSED2", result(wf, String.class));
    WorkflowNotFoundException e = assertThrows(WorkflowNotFoundException.class,
        () -> client().newUntypedWorkflowStub(id).terminate("too late"));
    assertTrue(e.getCause() instanceof StatusRuntimeException, String.valueOf(e.getCause()));
    assertEquals(Status.Code.NOT_FOUND, ((StatusRuntimeException) e.getCause()).getStatus().getCode());
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
        client().newUntypedWorkflowStub(id).describe().getStatus());
  }

  @Test
  void workflowFailureCarriesApplicationFailureDetails(TestInfo info) {
    String id = wid(info);
    FailWf wf = stub(FailWf.class, id);
    WorkflowClient.start(wf::run, "detail-one", 42);
    WorkflowFailedException e = assertThrows(WorkflowFailedException.class, () -> result(wf, String.class));
    ApplicationFailure app = causeOf(e, ApplicationFailure.class);
    assertEquals("InvalidInput", app.getType());
    assertEquals("workflow rejects input", app.getOriginalMessage());
    assertTrue(app.isNonRetryable());
    assertEquals("detail-one", app.getDetails().get(0, String.class));
    assertEquals(Integer.valueOf(42), app.getDetails().get(1, Integer.class));
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_FAILED,
        client().newUntypedWorkflowStub(id).describe().getStatus());
    HistoryEvent last = history(id).get(history(id).size() - 1);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, last.getEventType());
    assertEquals("InvalidInput", last.getWorkflowExecutionFailedEventAttributes().getFailure()
        .getApplicationFailureInfo().getType());
  }

  @Test
  void historyFetchAndReplay(TestInfo info) throws Exception {
    String id = wid(info);
    SimpleActivityWf wf = stub(SimpleActivityWf.class, id);
    WorkflowExecution exec = WorkflowClient.start(wf::run, "hist");
    assertEquals("HIST/HIST2", result(wf, String.class));
    WorkflowExecutionHistory h = client().fetchHistory(id, exec.getRunId());
    List<HistoryEvent> events = h.getEvents();
    for (int i = 0; i < events.size(); i++) {
      assertEquals(i + 1, events.get(i).getEventId(), "event ids are 1..n");
    }
    HistoryEvent first = events.get(0);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, first.getEventType());
    assertEquals("SimpleActivityWf",
        first.getWorkflowExecutionStartedEventAttributes().getWorkflowType().getName());
    assertEquals("hist",
        payloadString(first.getWorkflowExecutionStartedEventAttributes().getInput().getPayloads(0)));
    HistoryEvent last = events.get(events.size() - 1);
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, last.getEventType());
    assertEquals("HIST/HIST2",
        payloadString(last.getWorkflowExecutionCompletedEventAttributes().getResult().getPayloads(0)));
    assertEquals(List.of(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
        eventTypes(events));
    List<HistoryEvent> streamed = client().streamHistory(id).collect(Collectors.toList());
    assertEquals(events, streamed);
    WorkflowReplayer.replayWorkflowExecution(h, SimpleActivityImpl.class);
  }

  @Test
  void duplicateWorkflowIdIsAlreadyStarted(TestInfo info) {
    String id = wid(info);
    WorkflowStub s = startBlocking(id);
    String runId = s.getExecution().getRunId();
    try {
      BlockingWf again = stub(BlockingWf.class, id);
      WorkflowExecutionAlreadyStarted e =
          assertThrows(WorkflowExecutionAlreadyStarted.class, () -> WorkflowClient.start(again::run));
      assertEquals(id, e.getExecution().getWorkflowId());
      assertEquals(runId, e.getExecution().getRunId());
      assertEquals(java.util.Optional.of("BlockingWf"), e.getWorkflowType());
    } finally {
      s.terminate("test done");
    }
  }

  @Test
  void idReusePolicyAfterCompletion(TestInfo info) {
    String id = wid(info);
    SimpleActivityWf first = stub(SimpleActivityWf.class, id);
    WorkflowExecution e1 = WorkflowClient.start(first::run, "one");
    assertEquals("ONE/ONE2", result(first, String.class));
    SimpleActivityWf rejected = stub(SimpleActivityWf.class, opts(id).setWorkflowIdReusePolicy(
        WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE).build());
    WorkflowExecutionAlreadyStarted e =
        assertThrows(WorkflowExecutionAlreadyStarted.class, () -> WorkflowClient.start(rejected::run, "two"));
    assertEquals(e1.getRunId(), e.getExecution().getRunId());
    SimpleActivityWf allowed = stub(SimpleActivityWf.class, opts(id).setWorkflowIdReusePolicy(
        WorkflowIdReusePolicy.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE).build());
    WorkflowExecution e2 = WorkflowClient.start(allowed::run, "three");
    assertTrue(!e2.getRunId().equals(e1.getRunId()));
    assertEquals("THREE/THREE2", result(allowed, String.class));
  }

  @Test
  void signalToUnknownWorkflowIsNotFound(TestInfo info) {
    Workflows.SignalWf wf = client().newWorkflowStub(Workflows.SignalWf.class, wid(info) + "-missing");
    assertThrows(WorkflowNotFoundException.class, () -> wf.add("x"));
    WorkflowStub untyped = client().newUntypedWorkflowStub(wid(info) + "-missing");
    assertThrows(WorkflowNotFoundException.class, untyped::describe);
  }

  @Test
  void unknownNamespaceIsNotFound(TestInfo info) {
    String ns = "java-e2e-no-such-namespace";
    WorkflowClient other = WorkflowClient.newInstance(SuiteEnv.get().service,
        WorkflowClientOptions.newBuilder().setNamespace(ns).build());
    BlockingWf wf = other.newWorkflowStub(BlockingWf.class, opts(wid(info)).build());
    WorkflowServiceException e =
        assertThrows(WorkflowServiceException.class, () -> WorkflowClient.start(wf::run));
    Throwable c = e.getCause();
    assertTrue(c instanceof StatusRuntimeException, "cause " + c);
    Status st = ((StatusRuntimeException) c).getStatus();
    assertEquals(Status.Code.NOT_FOUND, st.getCode());
    assertTrue(String.valueOf(st.getDescription()).contains(ns), st.toString());
  }
}
