package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.MetadataWf;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionDescription;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/** Static summary/details of workflows and children; summaries of timers and activities. */
class UserMetadataTest extends E2EBase {

  @Test
  void userMetadataInDescribeAndHistory(TestInfo info) {
    String id = wid(info);
    MetadataWf wf = stub(MetadataWf.class, opts(id)
        .setStaticSummary("workflow summary")
        .setStaticDetails("workflow **details**")
        .build());
    WorkflowClient.start(wf::run);
    assertEquals("META/mm", result(wf, String.class));

    WorkflowExecutionDescription d = client().newUntypedWorkflowStub(id).describe();
    assertEquals("workflow summary", d.getStaticSummary());
    assertEquals("workflow **details**", d.getStaticDetails());

    List<HistoryEvent> events = history(id);
    HistoryEvent started = events.get(0);
    assertTrue(started.hasUserMetadata(), "started event has user_metadata");
    assertEquals("workflow summary", payloadString(started.getUserMetadata().getSummary()));
    assertEquals("workflow **details**", payloadString(started.getUserMetadata().getDetails()));

    HistoryEvent timer = firstEvent(events, EventType.EVENT_TYPE_TIMER_STARTED);
    assertEquals("timer summary", payloadString(timer.getUserMetadata().getSummary()));

    HistoryEvent act = firstEvent(events, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
    assertEquals("activity summary", payloadString(act.getUserMetadata().getSummary()));

    HistoryEvent marker = firstEvent(events, EventType.EVENT_TYPE_MARKER_RECORDED);
    assertEquals("local activity summary", payloadString(marker.getUserMetadata().getSummary()));

    HistoryEvent init = firstEvent(events, EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED);
    assertEquals("child summary", payloadString(init.getUserMetadata().getSummary()));
    assertEquals("child details", payloadString(init.getUserMetadata().getDetails()));

    String childId = id + "-child";
    WorkflowExecutionDescription cd = client().newUntypedWorkflowStub(childId).describe();
    assertEquals("child summary", cd.getStaticSummary());
    assertEquals("child details", cd.getStaticDetails());
    HistoryEvent childStarted = history(childId).get(0);
    assertEquals("child summary", payloadString(childStarted.getUserMetadata().getSummary()));
    assertEquals("child details", payloadString(childStarted.getUserMetadata().getDetails()));
  }
}
