package io.sundial.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.sundial.e2e.Workflows.MemoWf;
import io.sundial.e2e.Workflows.PendingActivityWf;
import io.sundial.e2e.Workflows.SearchAttrWf;
import io.sundial.e2e.Workflows.SimpleActivityWf;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.PendingActivityState;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.api.workflow.v1.PendingActivityInfo;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionDescription;
import io.temporal.client.WorkflowOptions;
import io.temporal.common.SearchAttributes;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/** Search attributes, memo and the fields of DescribeWorkflowExecution. */
class VisibilityTest extends E2EBase {

  @Test
  void typedSearchAttributesAtStartAndUpsert(TestInfo info) {
    String id = wid(info);
    WorkflowOptions o = opts(id).setTypedSearchAttributes(SearchAttributes.newBuilder()
        .set(Workflows.KEYWORD, "start-kw").set(Workflows.INT, 7L).build()).build();
    SearchAttrWf wf = stub(SearchAttrWf.class, o);
    WorkflowClient.start(wf::run, "upserted-kw", 42L);
    assertEquals("start-kw/7->upserted-kw/42", result(wf, String.class));
    WorkflowExecutionDescription d = client().newUntypedWorkflowStub(id).describe();
    SearchAttributes sa = d.getTypedSearchAttributes();
    assertEquals("upserted-kw", sa.get(Workflows.KEYWORD));
    assertEquals(Long.valueOf(42), sa.get(Workflows.INT));
    Map<String, List<?>> untyped = d.getSearchAttributes();
    assertEquals(List.of("upserted-kw"), untyped.get("CustomKeywordField"));
    HistoryEvent up = firstEvent(history(id), EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES);
    assertTrue(up.getUpsertWorkflowSearchAttributesEventAttributes().getSearchAttributes()
        .getIndexedFieldsMap().containsKey("CustomIntField"));
    HistoryEvent started = history(id).get(0);
    assertTrue(started.getWorkflowExecutionStartedEventAttributes().getSearchAttributes()
        .getIndexedFieldsMap().containsKey("CustomKeywordField"));
  }

  @Test
  void memoAtStartIsDescribedAndVisibleToWorkflow(TestInfo info) {
    String id = wid(info);
    WorkflowOptions o = opts(id).setMemo(Map.of("owner", "java-e2e", "count", 3)).build();
    MemoWf wf = stub(MemoWf.class, o);
    WorkflowClient.start(wf::run);
    assertEquals("java-e2e/3->4/by-workflow", result(wf, String.class));
    WorkflowExecutionDescription d = client().newUntypedWorkflowStub(id).describe();
    assertEquals("java-e2e", d.getMemo("owner", String.class));
    assertEquals(Integer.valueOf(4), d.getMemo("count", Integer.class), "count after upsertMemo");
    assertEquals("by-workflow", d.getMemo("added", String.class));
    HistoryEvent started = history(id).get(0);
    assertEquals(Integer.valueOf(3), io.temporal.common.converter.DefaultDataConverter.STANDARD_INSTANCE
        .fromPayload(started.getWorkflowExecutionStartedEventAttributes().getMemo()
            .getFieldsOrThrow("count"), Integer.class, Integer.class));
    HistoryEvent modified = firstEvent(history(id), EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED);
    assertTrue(modified.getWorkflowPropertiesModifiedEventAttributes().getUpsertedMemo()
        .getFieldsMap().containsKey("added"));
  }

  @Test
  void describeFieldsOfCompletedWorkflow(TestInfo info) {
    String id = wid(info);
    WorkflowOptions o = opts(id).setWorkflowExecutionTimeout(Duration.ofMinutes(5)).build();
    SimpleActivityWf wf = stub(SimpleActivityWf.class, o);
    WorkflowExecution exec = WorkflowClient.start(wf::run, "d");
    assertEquals("D/D2", result(wf, String.class));
    WorkflowExecutionDescription d = client().newUntypedWorkflowStub(id).describe();
    assertEquals(id, d.getExecution().getWorkflowId());
    assertEquals(exec.getRunId(), d.getExecution().getRunId());
    assertEquals("SimpleActivityWf", d.getWorkflowType());
    assertEquals(SuiteEnv.TASK_QUEUE, d.getTaskQueue());
    assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED, d.getStatus());
    assertNotNull(d.getStartTime());
    assertNotNull(d.getCloseTime());
    assertNotNull(d.getExecutionTime());
    assertTrue(!d.getCloseTime().isBefore(d.getStartTime()));
    assertTrue(!d.getExecutionTime().isBefore(d.getStartTime()));
    List<HistoryEvent> events = history(id);
    assertEquals(events.size(), d.getHistoryLength());
    assertEquals(300, d.getRawDescription().getExecutionConfig().getWorkflowExecutionTimeout().getSeconds());
    assertEquals(SuiteEnv.TASK_QUEUE, d.getRawDescription().getExecutionConfig().getTaskQueue().getName());
    assertEquals(0, d.getRawDescription().getPendingActivitiesCount());
    assertEquals(exec.getRunId(), d.getFirstRunId());
    var cfg = d.getRawDescription().getExecutionConfig();
    assertEquals(300, cfg.getWorkflowRunTimeout().getSeconds(), "run timeout defaults to execution timeout");
    assertEquals(10, cfg.getDefaultWorkflowTaskTimeout().getSeconds());
    var ext = d.getRawDescription().getWorkflowExtendedInfo();
    Instant start = d.getStartTime();
    assertEquals(start.plusSeconds(300).toEpochMilli(), toInstant(ext.getExecutionExpirationTime()).toEpochMilli(),
        1000.0, "execution expiration = start + execution timeout");
    assertEquals(start.plusSeconds(300).toEpochMilli(), toInstant(ext.getRunExpirationTime()).toEpochMilli(),
        1000.0, "run expiration = start + run timeout");
    assertEquals(start, toInstant(ext.getOriginalStartTime()));
    var wei = d.getRawDescription().getWorkflowExecutionInfo();
    assertTrue(wei.getHistorySizeBytes() > 0, "history_size_bytes");
    Duration ran = Duration.between(d.getExecutionTime(), d.getCloseTime());
    assertEquals(ran.toMillis(), d.getExecutionDuration().toMillis(), 2.0,
        "execution_duration = close_time - execution_time");
    assertEquals(id, wei.getRootExecution().getWorkflowId());
    assertEquals(exec.getRunId(), wei.getRootExecution().getRunId());
  }

  static Instant toInstant(com.google.protobuf.Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  @Test
  void describeShowsPendingActivityOfRunningWorkflow(TestInfo info) {
    String id = wid(info);
    PendingActivityWf wf = stub(PendingActivityWf.class, id);
    WorkflowClient.start(wf::run);
    try {
      eventually(10, "activity scheduled", () -> client().newUntypedWorkflowStub(id).describe()
          .getRawDescription().getPendingActivitiesCount() == 1);
      WorkflowExecutionDescription d = client().newUntypedWorkflowStub(id).describe();
      assertEquals(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING, d.getStatus());
      assertEquals(null, d.getCloseTime());
      PendingActivityInfo pa = d.getRawDescription().getPendingActivities(0);
      assertEquals("Upper", pa.getActivityType().getName());
      assertEquals(PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED, pa.getState());
      assertEquals(1, pa.getAttempt());
    } finally {
      client().newUntypedWorkflowStub(id).terminate("test done");
    }
  }

  @Test
  void describeShowsHeartbeatDetailsOfStartedActivity(TestInfo info) {
    String id = wid(info);
    Workflows.HeartbeatDescribeWf wf = stub(Workflows.HeartbeatDescribeWf.class, id);
    WorkflowClient.start(wf::run, id);
    eventually(15, "pending activity with heartbeat details", () -> {
      var raw = client().newUntypedWorkflowStub(id).describe().getRawDescription();
      return raw.getPendingActivitiesCount() == 1
          && raw.getPendingActivities(0).getHeartbeatDetails().getPayloadsCount() == 1;
    });
    PendingActivityInfo pa = client().newUntypedWorkflowStub(id).describe()
        .getRawDescription().getPendingActivities(0);
    assertEquals("HeartbeatUntilCancelled", pa.getActivityType().getName());
    assertEquals(PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, pa.getState());
    assertTrue(pa.hasLastHeartbeatTime(), pa.toString());
    assertTrue(pa.hasLastStartedTime(), pa.toString());
    assertEquals(1, pa.getAttempt());
    Integer beat = io.temporal.common.converter.DefaultDataConverter.STANDARD_INSTANCE.fromPayload(
        pa.getHeartbeatDetails().getPayloads(0), Integer.class, Integer.class);
    assertTrue(beat >= 0 && beat < 150, "heartbeat detail " + beat);
    assertTrue(pa.getLastWorkerIdentity().length() > 0, pa.toString());
    client().newWorkflowStub(Workflows.HeartbeatDescribeWf.class, id).stop();
    assertEquals("stopped", result(wf, String.class));
    assertEquals("ActivityCanceledException", Activities.CANCEL_SEEN.get(id));
  }
}
