package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.ChildWf;
import io.sundial.e2e.Workflows.ParentWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.ParentClosePolicy;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionDescription;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.ChildWorkflowFailure;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

class ChildWorkflowTest extends E2EBase {

  @Test
  void childWorkflowResult(TestInfo info) {
    String id = wid(info);
    ParentWf wf = stub(ParentWf.class, id);
    WorkflowClient.start(wf::run, "double", "ab");
    assertEquals("parent(abab)", result(wf, String.class));
    List<HistoryEvent> events = history(id);
    HistoryEvent init = firstEvent(events, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED);
    assertEquals("ChildWf",
        init.getStartChildWorkflowExecutionInitiatedEventAttributes().getWorkflowType().getName());
    HistoryEvent done = firstEvent(events, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED);
    assertEquals(id + "-child",
        done.getChildWorkflowExecutionCompletedEventAttributes().getWorkflowExecution().getWorkflowId());
    WorkflowExecutionDescription child = client().newUntypedWorkflowStub(id + "-child").describe();
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, child.getStatus());
    assertEquals(id, child.getParentExecution().getWorkflowId());
  }

  @Test
  void childFailureKeepsCauseChain(TestInfo info) {
    String id = wid(info);
    ParentWf wf = stub(ParentWf.class, id);
    WorkflowClient.start(wf::run, "fail", "bad-child-input");
    WorkflowFailedException e =
        assertThrows(WorkflowFailedException.class, () -> result(wf, String.class));
    ChildWorkflowFailure cf = causeOf(e, ChildWorkflowFailure.class);
    assertEquals("ChildWf", cf.getWorkflowType());
    assertEquals(id + "-child", cf.getExecution().getWorkflowId());
    ActivityFailure af = causeOf(cf, ActivityFailure.class);
    assertEquals("FailNonRetryable", af.getActivityType());
    ApplicationFailure app = causeOf(af, ApplicationFailure.class);
    assertEquals("ChildActivityError", app.getType());
    assertTrue(app.isNonRetryable());
    assertEquals("activity failed: bad-child-input", app.getOriginalMessage());
    assertEquals("bad-child-input", app.getDetails().get(0, String.class));
    HistoryEvent failed = firstEvent(history(id), EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED);
    io.temporal.api.failure.v1.Failure f =
        failed.getChildWorkflowExecutionFailedEventAttributes().getFailure();
    assertEquals("FailNonRetryable", f.getActivityFailureInfo().getActivityType().getName());
    assertEquals("ChildActivityError", f.getCause().getApplicationFailureInfo().getType());
  }

  @Test
  void abandonedChildOutlivesParent(TestInfo info) {
    String id = wid(info);
    ParentWf wf = stub(ParentWf.class, id);
    WorkflowClient.start(wf::run, "abandon", "orphan");
    String r = result(wf, String.class);
    String childId = id + "-child";
    assertTrue(r.startsWith("started:" + childId + ":"), r);
    String childRun = r.substring(("started:" + childId + ":").length());
    HistoryEvent init = firstEvent(history(id), EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED);
    assertEquals(ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON,
        init.getStartChildWorkflowExecutionInitiatedEventAttributes().getParentClosePolicy());
    WorkflowStub child = client().newUntypedWorkflowStub(childId);
    WorkflowExecutionDescription d = child.describe();
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING, d.getStatus());
    assertEquals(childRun, d.getExecution().getRunId());
    assertEquals(id, d.getParentExecution().getWorkflowId());
    client().newWorkflowStub(ChildWf.class, childId).release();
    assertEquals("released:orphan", result(child, String.class));
  }
}
