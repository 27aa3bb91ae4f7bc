package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.QueryWf;
import io.sundial.e2e.Workflows.SignalWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.BatchRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.api.enums.v1.QueryRejectCondition;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.client.WorkflowQueryConditionallyRejectedException;
import io.temporal.client.WorkflowQueryException;
import io.temporal.client.WorkflowStub;
import io.temporal.api.common.v1.WorkflowExecution;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

class SignalQueryTest extends E2EBase {

  @Test
  void signalsAreDeliveredInOrder(TestInfo info) {
    String id = wid(info);
    SignalWf wf = stub(SignalWf.class, id);
    WorkflowClient.start(wf::run, 3);
    SignalWf running = client().newWorkflowStub(SignalWf.class, id);
    running.add("a");
    running.add("b");
    running.add("c");
    assertEquals("a,b,c", result(wf, String.class));
    List<HistoryEvent> signals = history(id).stream()
        .filter(e -> e.getEventType() == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        .collect(Collectors.toList());
    assertEquals(3, signals.size());
    assertEquals("add", signals.get(0).getWorkflowExecutionSignaledEventAttributes().getSignalName());
  }

  @Test
  void signalWithStartStartsThenSignalsExisting(TestInfo info) {
    String id = wid(info);
    SignalWf wf = stub(SignalWf.class, id);
    BatchRequest first = client().newSignalWithStartRequest();
    first.add(wf::run, 2);
    first.add(wf::add, "first");
    WorkflowExecution e1 = client().signalWithStart(first);

    SignalWf again = stub(SignalWf.class, id);
    BatchRequest second = client().newSignalWithStartRequest();
    second.add(again::run, 2);
    second.add(again::add, "second");
    WorkflowExecution e2 = client().signalWithStart(second);

    assertEquals(e1.getRunId(), e2.getRunId(), "signalWithStart on a running workflow keeps its run");
    assertEquals("first,second", result(client().newUntypedWorkflowStub(id), String.class));
    List<EventType> types = eventTypes(history(id));
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, types.get(0));
    assertEquals(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, types.get(1));
    assertEquals(2, types.stream().filter(t -> t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED).count());
  }

  @Test
  void queriesOnRunningAndCompletedWorkflow(TestInfo info) {
    String id = wid(info);
    QueryWf wf = stub(QueryWf.class, id);
    WorkflowClient.start(wf::run, "q1");
    QueryWf handle = client().newWorkflowStub(QueryWf.class, id);
    eventually(10, "first workflow task processed", () -> "running:q1".equals(handle.state()));
    handle.finish("done");
    assertEquals("finished:done", result(wf, String.class));
    assertEquals("finished:done", handle.state(), "query after completion");
    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    assertEquals("finished:done", untyped.query("state", String.class));
  }

  @Test
  void queryRejectConditionNotOpenRejectsClosedWorkflow(TestInfo info) {
    String id = wid(info);
    QueryWf wf = stub(QueryWf.class, id);
    WorkflowClient.start(wf::run, "q3");
    client().newWorkflowStub(QueryWf.class, id).finish("closed");
    assertEquals("finished:closed", result(wf, String.class));
    WorkflowClient rejecting = WorkflowClient.newInstance(SuiteEnv.get().service,
        WorkflowClientOptions.newBuilder().setNamespace(SuiteEnv.NAMESPACE)
            .setQueryRejectCondition(QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN).build());
    WorkflowQueryConditionallyRejectedException e =
        assertThrows(WorkflowQueryConditionallyRejectedException.class,
            () -> rejecting.newUntypedWorkflowStub(id).query("state", String.class));
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, e.getWorkflowExecutionStatus());
    assertEquals(QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN, e.getQueryRejectCondition());
  }

  @Test
  void throwingQueryHandlerGivesWorkflowQueryException(TestInfo info) {
    String id = wid(info);
    QueryWf wf = stub(QueryWf.class, id);
    WorkflowClient.start(wf::run, "q2");
    QueryWf handle = client().newWorkflowStub(QueryWf.class, id);
    eventually(10, "first workflow task processed", () -> "running:q2".equals(handle.state()));
    WorkflowQueryException e =
        assertThrows(WorkflowQueryException.class, () -> handle.broken("because"));
    String text = String.valueOf(e.getMessage()) + " / " + e.getCause();
    assertTrue(text.contains("query handler refuses: because"), text);
    WorkflowStub untyped = client().newUntypedWorkflowStub(id);
    WorkflowQueryException unknown = assertThrows(WorkflowQueryException.class,
        () -> untyped.query("noSuchQuery", String.class));
    String utext = String.valueOf(unknown.getMessage()) + " / " + unknown.getCause();
    assertTrue(utext.contains("noSuchQuery"), utext);
    assertEquals("running:q2", handle.state(), "a failed query leaves the workflow alone");
    handle.finish("ok");
    assertEquals("finished:ok", result(wf, String.class));
  }
}
