"""Differential scenarios. Each takes a `Raw` helper bound to one server and returns a JSON-able
dict (event-type sequences, selected attributes, gRPC codes). The same scenario runs against
Temporal's dev server and the target; the dicts must be equal, except keys starting with "_",
which only document what Temporal did (recorded, not compared)."""
from __future__ import annotations

import asyncio
import uuid

from temporalio.api.common.v1 import Payloads, RetryPolicy, WorkflowType
from temporalio.api.enums.v1 import (
    HistoryEventFilterType, QueryResultType, TaskQueueKind, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
)
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.query.v1 import WorkflowQuery, WorkflowQueryResult
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
    QueryWorkflowRequest,
    RecordActivityTaskHeartbeatRequest,
    RequestCancelWorkflowExecutionRequest,
    RespondActivityTaskCanceledRequest,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskFailedRequest,
    RespondQueryTaskCompletedRequest,
    SignalWithStartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.service import RPCError

from rawclient import (
    IDENTITY, NS, Raw, cmd_activity, cmd_cancel_activity, cmd_cancel_timer, cmd_complete, cmd_continue_as_new,
    cmd_timer, decode, dur, dval, err_full, err_info, etype, payloads, present, secs,
)

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


async def expect_error(coro) -> dict:
    try:
        await coro
    except RPCError as e:
        return err_info(e)
    return {"code": "OK"}


# ---------------------------------------------------------------- semantics.md §8 scenarios


@scenario
async def s01_basic_start(r: Raw):
    wid = r.new_id("basic")
    resp = await r.start(wid)
    evs = await r.history(wid)
    sched = evs[1].workflow_task_scheduled_event_attributes
    d = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(wid)))
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_complete("fin")])
    final = await r.history(wid)
    return {
        "started": resp.started, "initial": [etype(e) for e in evs],
        "wft_attempt": sched.attempt, "wft_queue_kind": TaskQueueKind.Name(sched.task_queue.kind),
        "wft_timeout": secs(sched.start_to_close_timeout),
        "status": d.workflow_execution_info.status,
        "poll_attempt": t.attempt, "poll_started_event_id": t.started_event_id,
        "poll_prev_started": t.previous_started_event_id,
        "poll_history": [etype(e) for e in t.history.events],
        "final": [etype(e) for e in final],
        "result": decode(final[-1].workflow_execution_completed_event_attributes.result),
    }


@scenario
async def s02_dedupe_request_id(r: Raw):
    wid = r.new_id("dedupe")
    rid = str(uuid.uuid4())
    a = await r.start(wid, request_id=rid)
    b = await r.start(wid, request_id=rid)
    return {"same_run": a.run_id == b.run_id, "started": [a.started, b.started],
            "events": await r.types(wid)}


@scenario
async def s03_conflict_fail(r: Raw):
    wid = r.new_id("conflict")
    a = await r.start(wid)
    try:
        await r.start(wid)
        out = {"code": "OK"}
    except RPCError as e:
        out = err_info(e)
        from temporalio.api.errordetails.v1 import WorkflowExecutionAlreadyStartedFailure
        f = WorkflowExecutionAlreadyStartedFailure()
        e.grpc_status.details[0].Unpack(f)
        out["detail_run_id_matches"] = f.run_id == a.run_id
        out["detail_has_request_id"] = bool(f.start_request_id)
    return out


@scenario
async def s04_conflict_terminate_existing(r: Raw):
    wid = r.new_id("termex")
    a = await r.start(wid)
    b = await r.start(wid, workflow_id_conflict_policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING)
    ha = await r.history(wid, a.run_id)
    term = ha[-1].workflow_execution_terminated_event_attributes
    d = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(wid, b.run_id)))
    return {"new_run": b.run_id != a.run_id, "started": b.started, "old_events": [etype(e) for e in ha],
            "identity": term.identity, "reason_mentions_policy": "WorkflowIdReusePolicy" in term.reason,
            "new_status": d.workflow_execution_info.status}


@scenario
async def s05_timeout_normalisation(r: Raw):
    wid = r.new_id("timeouts")
    await r.start(wid, workflow_execution_timeout=dur(30))
    a = (await r.history(wid))[0].workflow_execution_started_event_attributes
    wid2 = r.new_id("timeouts2")
    await r.start(wid2, workflow_task_timeout=dur(300))
    b = (await r.history(wid2))[0].workflow_execution_started_event_attributes
    wid3 = r.new_id("timeouts3")
    await r.start(wid3, workflow_run_timeout=dur(5), workflow_task_timeout=dur(20))
    c = (await r.history(wid3))[0].workflow_execution_started_event_attributes
    return {
        "exec30": [secs(a.workflow_execution_timeout), secs(a.workflow_run_timeout), secs(a.workflow_task_timeout)],
        "wft300": [secs(b.workflow_execution_timeout), secs(b.workflow_run_timeout), secs(b.workflow_task_timeout)],
        "run5_wft20": [secs(c.workflow_execution_timeout), secs(c.workflow_run_timeout), secs(c.workflow_task_timeout)],
    }


@scenario
async def s06_start_delay(r: Raw):
    wid = r.new_id("delay")
    await r.start(wid, workflow_start_delay=dur(2))
    e1 = await r.history(wid)
    backoff = secs(e1[0].workflow_execution_started_event_attributes.first_workflow_task_backoff)
    await asyncio.sleep(0.5)
    await r.signal(wid)
    await asyncio.sleep(0.3)
    after_signal = await r.types(wid)
    evs = await r.wait_for_event(wid, "WORKFLOW_TASK_SCHEDULED", timeout=10)
    return {"initial": [etype(e) for e in e1], "backoff": backoff, "after_signal": after_signal,
            "after_delay": [etype(e) for e in evs]}


@scenario
async def s07_signal_buffering_unhandled_command(r: Raw):
    wid = r.new_id("unhandled")
    await r.start(wid)
    t = await r.poll_wft()
    await r.signal(wid)
    during = await r.types(wid)
    err = await expect_error(r.complete(t.task_token, [cmd_complete()]))
    evs = await r.history(wid)
    failed = [e for e in evs if etype(e) == "WORKFLOW_TASK_FAILED"]
    from temporalio.api.enums.v1 import WorkflowTaskFailedCause
    return {"during": during, "error": err, "after": [etype(e) for e in evs],
            "cause": WorkflowTaskFailedCause.Name(failed[0].workflow_task_failed_event_attributes.cause) if failed else None}


@scenario
async def s08_transient_workflow_task(r: Raw):
    wid = r.new_id("transient")
    await r.start(wid)
    t1 = await r.poll_wft()
    await r.fail_wft(t1.task_token)
    t2 = await r.poll_wft()
    hist_running = await r.types(wid)  # includes transient events while running
    await r.fail_wft(t2.task_token)
    t3 = await r.poll_wft()
    await r.complete(t3.task_token, [cmd_timer("t1", 30)])
    evs = await r.history(wid)
    scheds = [e.workflow_task_scheduled_event_attributes.attempt for e in evs if etype(e) == "WORKFLOW_TASK_SCHEDULED"]
    return {
        "attempts": [t1.attempt, t2.attempt, t3.attempt],
        "t2_history": [(e.event_id, etype(e)) for e in t2.history.events],
        "t3_history": [(e.event_id, etype(e)) for e in t3.history.events],
        "t3_started_event_id": t3.started_event_id,
        "get_history_during_attempt2": hist_running,
        "final": [etype(e) for e in evs], "scheduled_attempts": scheds,
    }


@scenario
async def s09_bad_command_attempt1(r: Raw):
    wid = r.new_id("badcmd")
    await r.start(wid)
    t = await r.poll_wft()
    try:
        await r.complete(t.task_token, [cmd_timer("", 1)])
        err = {"code": "OK"}
    except RPCError as e:
        err = err_info(e)
        err["message_prefix"] = e.message.split(":")[0]
    evs = await r.history(wid)
    from temporalio.api.enums.v1 import WorkflowTaskFailedCause
    f = [e for e in evs if etype(e) == "WORKFLOW_TASK_FAILED"]
    t2 = await r.poll_wft()
    return {"error": err, "events": [etype(e) for e in evs],
            "cause": WorkflowTaskFailedCause.Name(f[0].workflow_task_failed_event_attributes.cause) if f else None,
            "failure_has_server_info": bool(f) and f[0].workflow_task_failed_event_attributes.failure.HasField("server_failure_info"),
            "next_attempt": t2.attempt}


@scenario
async def s10_close_command_not_last(r: Raw):
    wid = r.new_id("notlast")
    await r.start(wid)
    t = await r.poll_wft()
    err = await expect_error(r.complete(t.task_token, [cmd_complete(), cmd_timer("t", 1)]))
    return {"error": err, "events": await r.types(wid)}


@scenario
async def s11_sticky_partial_history(r: Raw):
    wid = r.new_id("sticky")
    sticky_name = f"{r.tq}-sticky"
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [], sticky_attributes=r.sticky(sticky_name))
    poll = asyncio.ensure_future(r.poll_wft(TaskQueue(name=sticky_name, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY,
                                                      normal_name=r.tq)))
    await asyncio.sleep(0.5)
    await r.signal(wid)
    s = await poll
    evs = await r.history(wid)
    sched = [e for e in evs if etype(e) == "WORKFLOW_TASK_SCHEDULED"][-1].workflow_task_scheduled_event_attributes
    await r.complete(s.task_token, [cmd_complete()])
    return {"prev_started": s.previous_started_event_id, "started": s.started_event_id,
            "history": [(e.event_id, etype(e)) for e in s.history.events],
            "sched_queue_kind": TaskQueueKind.Name(sched.task_queue.kind),
            "wf_task_queue": s.workflow_execution_task_queue.name == r.tq,
            "final": await r.types(wid)}


@scenario
async def s12_activity_normalisation(r: Raw):
    wid = r.new_id("actnorm")
    await r.start(wid, workflow_run_timeout=dur(60))
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=5)])
    a = (await r.history(wid))[-1].activity_task_scheduled_event_attributes
    wid2 = r.new_id("actnorm2")
    await r.start(wid2)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=2, hb=10)])
    b = (await r.history(wid2))[-1].activity_task_scheduled_event_attributes
    wid3 = r.new_id("actnorm3")
    await r.start(wid3)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, s2c=7)])
    c = (await r.history(wid3))[-1].activity_task_scheduled_event_attributes

    def norm(x):
        rp = x.retry_policy
        return {"s2c": secs(x.schedule_to_close_timeout), "s2s": secs(x.schedule_to_start_timeout),
                "stc": secs(x.start_to_close_timeout), "hb": secs(x.heartbeat_timeout),
                "retry": [secs(rp.initial_interval), rp.backoff_coefficient, secs(rp.maximum_interval), rp.maximum_attempts]}
    return {"rt60_stc5": norm(a), "no_rt_stc2_hb10": norm(b), "s2c7": norm(c)}


@scenario
async def s13_lazy_activity_started_event(r: Raw):
    wid = r.new_id("lazy")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=10, input_val="in")])
    a = await r.poll_activity()
    during = await r.types(wid)
    await r.svc.respond_activity_task_completed(RespondActivityTaskCompletedRequest(
        namespace=NS, task_token=a.task_token, result=payloads("out"), identity=IDENTITY))
    evs = await r.history(wid)
    st = [e for e in evs if etype(e) == "ACTIVITY_TASK_STARTED"][0].activity_task_started_event_attributes
    return {"poll": {"attempt": a.attempt, "activity_id": a.activity_id, "type": a.activity_type.name,
                     "input": decode(a.input), "wf_type": a.workflow_type.name},
            "during": during, "after": [etype(e) for e in evs], "started_attempt": st.attempt,
            "result": decode(evs[-2].activity_task_completed_event_attributes.result)}


@scenario
async def s14_activity_non_retryable_and_retry(r: Raw):
    wid = r.new_id("nonretry")
    await r.start(wid)
    t = await r.poll_wft()
    rp = RetryPolicy(initial_interval=dur(0.2), maximum_attempts=5, non_retryable_error_types=["Fatal"])
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=10, retry=rp)])
    # attempt 1 fails with a retryable type; attempt 2 fails with the non-retryable type
    a1 = await r.poll_activity()
    await r.svc.respond_activity_task_failed(RespondActivityTaskFailedRequest(
        namespace=NS, task_token=a1.task_token, identity=IDENTITY,
        failure=Failure(message="soft", application_failure_info=ApplicationFailureInfo(type="Soft"))))
    mid = await r.types(wid)
    a2 = await r.poll_activity()
    await r.svc.respond_activity_task_failed(RespondActivityTaskFailedRequest(
        namespace=NS, task_token=a2.task_token, identity=IDENTITY,
        failure=Failure(message="hard", application_failure_info=ApplicationFailureInfo(type="Fatal"))))
    evs = await r.history(wid)
    from temporalio.api.enums.v1 import RetryState
    f = evs[-2].activity_task_failed_event_attributes
    st = evs[-3].activity_task_started_event_attributes
    return {"attempts": [a1.attempt, a2.attempt], "after_first_failure": mid, "final": [etype(e) for e in evs],
            "retry_state": RetryState.Name(f.retry_state), "failure": f.failure.message,
            "started_attempt": st.attempt, "last_failure": st.last_failure.message}


@scenario
async def s15_heartbeat_timeout_details(r: Raw):
    wid = r.new_id("hbto")
    await r.start(wid)
    t = await r.poll_wft()
    rp = RetryPolicy(initial_interval=dur(0.1), maximum_attempts=2)
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=20, hb=1, retry=rp)])
    a1 = await r.poll_activity()
    hb = await r.svc.record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest(
        namespace=NS, task_token=a1.task_token, details=payloads("D"), identity=IDENTITY))
    a2 = await r.poll_activity(timeout=15)
    evs = await r.wait_for_event(wid, "ACTIVITY_TASK_TIMED_OUT", timeout=15)
    to = [e for e in evs if etype(e) == "ACTIVITY_TASK_TIMED_OUT"][0].activity_task_timed_out_event_attributes
    from temporalio.api.enums.v1 import RetryState, TimeoutType
    late = await expect_error(r.svc.respond_activity_task_completed(RespondActivityTaskCompletedRequest(
        namespace=NS, task_token=a1.task_token, identity=IDENTITY)))
    return {"hb_cancel_requested": hb.cancel_requested, "attempt2": a2.attempt,
            "attempt2_details": decode(a2.heartbeat_details),
            "events": [etype(e) for e in evs],
            "timeout_type": TimeoutType.Name(to.failure.timeout_failure_info.timeout_type),
            "last_hb": decode(to.failure.timeout_failure_info.last_heartbeat_details),
            "retry_state": RetryState.Name(to.retry_state), "message": to.failure.message,
            "late_completion": late}


@scenario
async def s16_activity_cancel(r: Raw):
    wid = r.new_id("actcancel")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_activity("never", "nobody-" + r.tq, stc=10), cmd_activity("a2", r.tq, stc=30)])
    idle = await r.poll_wft(allow_empty=True, timeout=3)  # nothing to do until an activity resolves
    evs = await r.history(wid)
    sched = {e.activity_task_scheduled_event_attributes.activity_id: e.event_id for e in evs if etype(e) == "ACTIVITY_TASK_SCHEDULED"}
    act = await r.poll_activity()
    # need a WFT to issue cancels: signal the workflow
    await r.signal(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_cancel_activity(sched["never"]), cmd_cancel_activity(sched["a2"])])
    after_cancel = await r.types(wid)
    hb = await r.svc.record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest(
        namespace=NS, task_token=act.task_token, identity=IDENTITY))
    await r.svc.respond_activity_task_canceled(RespondActivityTaskCanceledRequest(
        namespace=NS, task_token=act.task_token, details=payloads("bye"), identity=IDENTITY))
    evs = await r.history(wid)
    canceled = [e.activity_task_canceled_event_attributes for e in evs if etype(e) == "ACTIVITY_TASK_CANCELED"]
    return {"no_wft_while_activities_pending": not idle.task_token, "after_cancel": after_cancel, "hb_cancel_requested": hb.cancel_requested,
            "final": [etype(e) for e in evs],
            "canceled_details": [decode(c.details) for c in canceled]}


@scenario
async def s17_late_activity_completion(r: Raw):
    wid = r.new_id("late")
    await r.start(wid)
    t = await r.poll_wft()
    rp = RetryPolicy(initial_interval=dur(0.1), maximum_attempts=3)
    await r.complete(t.task_token, [cmd_activity("a1", r.tq, stc=1, retry=rp)])
    a1 = await r.poll_activity()
    a2 = await r.poll_activity(timeout=10)  # attempt 2 after the start-to-close timeout
    late = await expect_error(r.svc.respond_activity_task_completed(RespondActivityTaskCompletedRequest(
        namespace=NS, task_token=a1.task_token, identity=IDENTITY)))
    bad = await expect_error(r.svc.respond_activity_task_completed(RespondActivityTaskCompletedRequest(
        namespace=NS, task_token=b"not-a-token", identity=IDENTITY)))
    before = await r.types(wid)
    await r.svc.respond_activity_task_completed(RespondActivityTaskCompletedRequest(
        namespace=NS, task_token=a2.task_token, result=payloads(2), identity=IDENTITY))
    return {"attempts": [a1.attempt, a2.attempt], "late": late, "malformed": bad, "before": before,
            "after": await r.types(wid)}


@scenario
async def s18_closed_run_api(r: Raw):
    wid = r.new_id("closed")
    await r.start(wid)
    await r.svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
        namespace=NS, workflow_execution=r.ex(wid), reason="r1", identity=IDENTITY))
    sig = await expect_error(r.signal(wid))
    term = await expect_error(r.svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
        namespace=NS, workflow_execution=r.ex(wid), reason="r2", identity=IDENTITY)))
    canc = await expect_error(r.svc.request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest(
        namespace=NS, workflow_execution=r.ex(wid), identity=IDENTITY, request_id=str(uuid.uuid4()))))
    missing = await expect_error(r.signal("no-such-" + wid))
    return {"signal": sig, "terminate": term, "cancel": canc, "missing": missing, "events": await r.types(wid)}


# ---------------------------------------------------------------- more scenarios


@scenario
async def s19_unknown_namespace(r: Raw):
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, StartWorkflowExecutionRequest
    a = await expect_error(r.svc.describe_namespace(DescribeNamespaceRequest(namespace="no-such-namespace-x")))
    b = await expect_error(r.svc.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace="no-such-namespace-x", workflow_id="w", workflow_type=WorkflowType(name="T"),
        task_queue=TaskQueue(name="q"), request_id=str(uuid.uuid4()))))
    c = await expect_error(r.start(""))
    return {"describe": a, "start": b, "empty_id": c}


@scenario
async def s20_timer_fire_and_cancel(r: Raw):
    wid = r.new_id("timer")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_timer("short", 1), cmd_timer("long", 60)])
    t = await r.poll_wft()
    fired = [e.timer_fired_event_attributes.timer_id for e in t.history.events if etype(e) == "TIMER_FIRED"]
    await r.complete(t.task_token, [cmd_cancel_timer("long"), cmd_complete()])
    return {"fired": fired, "events": await r.types(wid)}


@scenario
async def s21_signal_with_start(r: Raw):
    wid = r.new_id("sws")

    def req():
        return SignalWithStartWorkflowExecutionRequest(
            namespace=NS, workflow_id=wid, workflow_type=WorkflowType(name=r.wf_type), task_queue=TaskQueue(name=r.tq),
            signal_name="go", signal_input=payloads(1), identity=IDENTITY, request_id=str(uuid.uuid4()))
    a = await r.svc.signal_with_start_workflow_execution(req())
    b = await r.svc.signal_with_start_workflow_execution(req())
    f = req()
    f.workflow_id_conflict_policy = WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL
    fail = await expect_error(r.svc.signal_with_start_workflow_execution(f))
    return {"started": [a.started, b.started], "same_run": a.run_id == b.run_id,
            "conflict_fail": fail, "events": await r.types(wid)}


@scenario
async def s22_legacy_query(r: Raw):
    wid = r.new_id("query")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [])

    async def answer():
        q = await r.poll_wft()
        out = {"has_query": q.HasField("query"), "type": q.query.query_type,
               "args": decode(q.query.query_args), "history_len": len(q.history.events)}
        await r.svc.respond_query_task_completed(RespondQueryTaskCompletedRequest(
            namespace=NS, task_token=q.task_token, completed_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED,
            query_result=payloads("answer")))
        return out
    worker = asyncio.ensure_future(answer())
    resp = await r.svc.query_workflow(QueryWorkflowRequest(namespace=NS, execution=r.ex(wid),
                                                           query=WorkflowQuery(query_type="state", query_args=payloads("x"))))
    seen = await worker
    return {"seen": seen, "result": decode(resp.query_result), "events": await r.types(wid)}


@scenario
async def s23_attached_query(r: Raw):
    """A query sent while a workflow task is pending rides on that task (`queries` map)."""
    wid = r.new_id("attq")
    await r.start(wid)  # WFT 1 pending, not polled yet
    qtask = asyncio.ensure_future(r.svc.query_workflow(QueryWorkflowRequest(
        namespace=NS, execution=r.ex(wid), query=WorkflowQuery(query_type="state"))))
    await asyncio.sleep(0.5)
    t = await r.poll_wft()
    qids = list(t.queries.keys())
    answers = {k: WorkflowQueryResult(result_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED, answer=payloads("attached"))
               for k in qids}
    legacy = None
    await r.complete(t.task_token, [], query_results=answers)
    if not qids:  # fall back: the query came as a legacy task
        q = await r.poll_wft()
        legacy = q.query.query_type
        await r.svc.respond_query_task_completed(RespondQueryTaskCompletedRequest(
            namespace=NS, task_token=q.task_token, completed_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED,
            query_result=payloads("legacy")))
    resp = await qtask
    return {"attached_count": len(qids), "query_types": [t.queries[k].query_type for k in qids],
            "legacy": legacy, "result": decode(resp.query_result), "events": await r.types(wid)}


@scenario
async def s24_continue_as_new(r: Raw):
    wid = r.new_id("can")
    a = await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_continue_as_new(r.wf_type, r.tq, 2)])
    old = await r.history(wid, a.run_id)
    can = old[-1].workflow_execution_continued_as_new_event_attributes
    new = await r.history(wid, can.new_execution_run_id)
    st = new[0].workflow_execution_started_event_attributes
    t2 = await r.poll_wft(timeout=10)
    await r.complete(t2.task_token, [cmd_complete("end")])
    cur = await r.history(wid)  # empty run id = current run
    from temporalio.api.enums.v1 import ContinueAsNewInitiator
    return {"old": [etype(e) for e in old], "new_initial": [etype(e) for e in new],
            "links": [st.continued_execution_run_id == a.run_id, st.first_execution_run_id == a.run_id,
                      st.original_execution_run_id == can.new_execution_run_id],
            "initiator": ContinueAsNewInitiator.Name(st.initiator), "input": decode(st.input),
            "backoff_positive": secs(st.first_workflow_task_backoff) > 0,
            "current": [etype(e) for e in cur], "poll_history_first": etype(t2.history.events[0])}


@scenario
async def s25_history_paging_batches(r: Raw):
    wid = r.new_id("paging")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_timer(f"t{i}", 60) for i in range(6)])
    for i in range(3):
        await r.signal(wid, value=i)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_complete()])
    pages, token = [], b""
    while True:
        resp = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=NS, execution=r.ex(wid), maximum_page_size=4, next_page_token=token))
        pages.append([e.event_id for e in resp.history.events])
        token = resp.next_page_token
        if not token:
            break
        assert len(pages) < 50
    close = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace=NS, execution=r.ex(wid),
        history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT))
    return {"all_ids": [i for p in pages for i in p], "_pages": pages,
            "close_filter": [etype(e) for e in close.history.events], "close_token": bool(close.next_page_token),
            "events": await r.types(wid)}


@scenario
async def s26_long_poll_history(r: Raw):
    """The SDK pattern: wait_new_event reads what exists, then blocks on the returned token."""
    from datetime import timedelta
    wid = r.new_id("lp")
    a = await r.start(wid)
    ex = r.ex(wid, a.run_id)
    plain = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(namespace=NS, execution=ex))
    first = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace=NS, execution=ex, wait_new_event=True), timeout=timedelta(seconds=30))
    tok = first.next_page_token

    async def later():
        await asyncio.sleep(1.0)
        await r.signal(wid)
    sig = asyncio.ensure_future(later())
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    calls = []
    while loop.time() - t0 < 25:
        resp = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=NS, execution=ex, wait_new_event=True, next_page_token=tok), timeout=timedelta(seconds=30))
        calls.append([etype(e) for e in resp.history.events])
        tok = resp.next_page_token
        if resp.history.events:
            break
    waited = loop.time() - t0
    await sig
    running_close = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace=NS, execution=ex,
        history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT))
    return {"plain": [etype(e) for e in plain.history.events], "plain_has_token": bool(plain.next_page_token),
            "first": [etype(e) for e in first.history.events], "first_has_token": bool(first.next_page_token),
            "waited_for_signal": waited >= 0.9, "calls": calls, "token_after_new_event": bool(tok),
            "running_close_filter": [etype(e) for e in running_close.history.events],
            "running_close_filter_token": bool(running_close.next_page_token)}


@scenario
async def s27_cancel_request_events(r: Raw):
    wid = r.new_id("cancelreq")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [])
    for _ in range(2):  # the second request is a no-op
        await r.svc.request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest(
            namespace=NS, workflow_execution=r.ex(wid), identity=IDENTITY, request_id=str(uuid.uuid4()), reason="stop"))
    t = await r.poll_wft()
    from temporalio.api.command.v1 import CancelWorkflowExecutionCommandAttributes, Command
    from temporalio.api.enums.v1 import CommandType
    await r.complete(t.task_token, [Command(command_type=CommandType.COMMAND_TYPE_CANCEL_WORKFLOW_EXECUTION,
                                            cancel_workflow_execution_command_attributes=CancelWorkflowExecutionCommandAttributes())])
    d = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(wid)))
    return {"poll_saw": [etype(e) for e in t.history.events][-4:], "events": await r.types(wid),
            "status": d.workflow_execution_info.status}


@scenario
async def s28_workflow_task_timeout(r: Raw):
    wid = r.new_id("wftto")
    await r.start(wid, workflow_task_timeout=dur(1))
    t1 = await r.poll_wft()  # never answered
    t2 = await r.poll_wft(timeout=10)
    from temporalio.api.enums.v1 import TimeoutType
    evs = await r.history(wid)
    to = [e for e in evs if etype(e) == "WORKFLOW_TASK_TIMED_OUT"][0].workflow_task_timed_out_event_attributes
    stale = await expect_error(r.complete(t1.task_token, [cmd_complete()]))
    await r.complete(t2.task_token, [cmd_complete()])
    return {"attempts": [t1.attempt, t2.attempt], "timeout_type": TimeoutType.Name(to.timeout_type),
            "t2_history": [(e.event_id, etype(e)) for e in t2.history.events], "stale_token": stale,
            "final": await r.types(wid)}


@scenario
async def s29_shutdown_worker_ends_sticky_poll(r: Raw):
    from datetime import timedelta
    from temporalio.api.workflowservice.v1 import ShutdownWorkerRequest
    wid = r.new_id("shutdown")
    sticky_name = f"{r.tq}-sticky"
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [], sticky_attributes=r.sticky(sticky_name, timeout=5))
    loop = asyncio.get_running_loop()
    poll = asyncio.ensure_future(r.svc.poll_workflow_task_queue(
        __import__("temporalio.api.workflowservice.v1", fromlist=["x"]).PollWorkflowTaskQueueRequest(
            namespace=NS, identity=IDENTITY,
            task_queue=TaskQueue(name=sticky_name, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=r.tq)),
        timeout=timedelta(seconds=30)))
    await asyncio.sleep(1.0)
    t0 = loop.time()
    await r.svc.shutdown_worker(ShutdownWorkerRequest(namespace=NS, sticky_task_queue=sticky_name, identity=IDENTITY))
    resp = await poll
    ended_fast = loop.time() - t0 < 5
    # After the sticky worker is gone, a new workflow task falls back to the normal queue.
    await r.signal(wid)
    t2 = await r.poll_wft(timeout=20)
    await r.complete(t2.task_token, [cmd_complete()])
    return {"sticky_poll_empty": not resp.task_token, "ended_fast": ended_fast,
            "fallback_history_from": t2.history.events[0].event_id, "final": await r.types(wid)}


@scenario
async def s30_bad_input(r: Raw):
    from temporalio.api.workflowservice.v1 import (
        RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
    )
    out = {}
    out["id_too_long"] = await expect_error(r.start("x" * 1001))
    out["id_max_len_ok"] = await expect_error(r.start(r.new_id("y").ljust(1000, "y")))
    out["no_type"] = await expect_error(r.svc.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace=NS, workflow_id=r.new_id("notype"), task_queue=TaskQueue(name=r.tq), request_id=str(uuid.uuid4()))))
    out["no_task_queue"] = await expect_error(r.svc.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace=NS, workflow_id=r.new_id("notq"), workflow_type=WorkflowType(name="T"), request_id=str(uuid.uuid4()))))
    out["malformed_wft_token"] = await expect_error(r.svc.respond_workflow_task_completed(
        RespondWorkflowTaskCompletedRequest(namespace=NS, task_token=b"\x01garbage", identity=IDENTITY)))
    big = "z" * (2 * 1024 * 1024 + 100)
    from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest as S
    out["input_over_blob_limit"] = await expect_error(r.svc.start_workflow_execution(S(
        namespace=NS, workflow_id=r.new_id("big"), workflow_type=WorkflowType(name="T"), task_queue=TaskQueue(name=r.tq),
        input=payloads(big), request_id=str(uuid.uuid4()))))
    wid = r.new_id("bigsig")
    await r.start(wid)
    out["signal_over_blob_limit"] = await expect_error(r.signal(wid, value=big))
    out["unknown_reuse_policy"] = await expect_error(r.start(r.new_id("enum"), workflow_id_reuse_policy=99))
    out["bad_page_token"] = await expect_error(r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace=NS, execution=r.ex(wid), next_page_token=b"\xffnot-a-token")))
    out["events_after_bad_signal"] = await r.types(wid)
    return out


@scenario
async def s31_child_workflow_raw(r: Raw):
    from temporalio.api.command.v1 import Command, StartChildWorkflowExecutionCommandAttributes
    from temporalio.api.enums.v1 import CommandType
    pid = r.new_id("parent")
    cid = pid + "-child"
    ctq = r.tq + "-child"
    await r.start(pid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [Command(
        command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=StartChildWorkflowExecutionCommandAttributes(
            namespace=NS, workflow_id=cid, workflow_type=WorkflowType(name="DiffChild"),
            task_queue=TaskQueue(name=ctq), input=payloads("ci")))])
    t = await r.poll_wft()  # parent: child started
    saw_started = [etype(e) for e in t.history.events][-4:]
    await r.complete(t.task_token, [])
    c = await r.poll_wft(TaskQueue(name=ctq))
    cstart = c.history.events[0].workflow_execution_started_event_attributes
    await r.complete(c.task_token, [cmd_complete("child-result")])
    t = await r.poll_wft()
    done = [e for e in t.history.events if etype(e) == "CHILD_WORKFLOW_EXECUTION_COMPLETED"]
    await r.complete(t.task_token, [cmd_complete("parent-result")])
    # a second child with the same id while the first is closed is allowed (ALLOW_DUPLICATE); a
    # child whose id is running fails with WORKFLOW_ALREADY_EXISTS
    return {"parent_saw": saw_started,
            "child_parent": [cstart.parent_workflow_execution.workflow_id == pid, cstart.parent_initiated_event_id],
            "child_input": decode(cstart.input), "child_events": await r.types(cid),
            "child_result_in_parent": decode(done[0].child_workflow_execution_completed_event_attributes.result) if done else None,
            "parent_events": await r.types(pid)}


@scenario
async def s32_signal_external_raw(r: Raw):
    from temporalio.api.command.v1 import Command, SignalExternalWorkflowExecutionCommandAttributes
    from temporalio.api.enums.v1 import CommandType, SignalExternalWorkflowExecutionFailedCause
    src = r.new_id("src")
    dst = r.new_id("dst")
    await r.start(dst)
    await r.start(src)
    # the destination's first task is polled and completed first so both are idle
    t = await r.poll_wft()
    first = t.workflow_execution.workflow_id
    await r.complete(t.task_token, [])
    t = await r.poll_wft()
    assert {first, t.workflow_execution.workflow_id} == {src, dst}
    if t.workflow_execution.workflow_id != src:
        await r.complete(t.task_token, [])
        t = await r.poll_wft(allow_empty=True, timeout=3)
        assert not t.task_token
        await r.signal(src, name="kick")
        t = await r.poll_wft()

    def sig(target):
        return Command(command_type=CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
                       signal_external_workflow_execution_command_attributes=SignalExternalWorkflowExecutionCommandAttributes(
                           namespace=NS, execution=r.ex(target), signal_name="ext", input=payloads("hi")))
    await r.complete(t.task_token, [sig(dst), sig("missing-" + dst)])
    await r.wait_for_event(src, "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED")
    srcs = await r.wait_for_event(src, "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED")
    failed = [e for e in srcs if etype(e) == "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED"][0]
    dst_events = await r.types(dst)
    # the two outcomes are processed independently, so their order is not compared
    return {"src_external_events": sorted(etype(e) for e in srcs if "EXTERNAL" in etype(e)),
            "failed_cause": SignalExternalWorkflowExecutionFailedCause.Name(
                failed.signal_external_workflow_execution_failed_event_attributes.cause),
            "dst_has_signal": "WORKFLOW_EXECUTION_SIGNALED" in dst_events}


@scenario
async def s33_terminate_without_reason_or_identity(r: Raw):
    out = {}
    for label, reason, identity in [("neither", "", ""), ("reason_only", "r", ""), ("identity_only", "", IDENTITY)]:
        wid = r.new_id("termdefaults")
        await r.start(wid)
        await r.svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
            namespace=NS, workflow_execution=r.ex(wid), reason=reason, identity=identity))
        events = await r.history(wid)
        term = events[-1].workflow_execution_terminated_event_attributes
        out[label] = {"events": [etype(e) for e in events], "reason": term.reason, "identity": term.identity,
                      "has_details": term.HasField("details")}
    return out


# ---------------------------------------------------------------- activity timeouts, ids, service metadata


async def expect_error_full(coro) -> dict:
    """Like expect_error, with the exact message."""
    try:
        await coro
    except RPCError as e:
        return err_full(e)
    return {"code": "OK"}


def _schedule_activity(tq: str, *, s2c=None, s2s=None, stc=None, hb=None, retry=None, header=None):
    """A ScheduleActivityTask command; a timeout given (even 0) is set, None leaves it unset."""
    from temporalio.api.command.v1 import Command, ScheduleActivityTaskCommandAttributes
    from temporalio.api.common.v1 import ActivityType, Header
    from temporalio.api.enums.v1 import CommandType
    a = ScheduleActivityTaskCommandAttributes(activity_id="act-1", activity_type=ActivityType(name="DiffActivity"),
                                              task_queue=TaskQueue(name=tq, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                                              input=payloads("in"))
    for v, f in ((s2c, "schedule_to_close_timeout"), (s2s, "schedule_to_start_timeout"),
                 (stc, "start_to_close_timeout"), (hb, "heartbeat_timeout")):
        if v is not None:
            getattr(a, f).CopyFrom(dur(v))
    if retry is not None:
        a.retry_policy.CopyFrom(retry)
    if header is not None:
        a.header.CopyFrom(Header(fields={k: payloads(v).payloads[0] for k, v in header.items()}))
    return Command(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, schedule_activity_task_command_attributes=a)


def _retry_dict(msg) -> object:
    if not msg.HasField("retry_policy"):
        return "unset"
    p = msg.retry_policy
    return {"initial": dval(p, "initial_interval"), "coefficient": p.backoff_coefficient,
            "maximum": dval(p, "maximum_interval"), "attempts": p.maximum_attempts,
            "non_retryable": list(p.non_retryable_error_types)}


_WF_TIMEOUTS = {"inf": {}, "run120_exec300": {"workflow_run_timeout": 120, "workflow_execution_timeout": 300},
                "exec300": {"workflow_execution_timeout": 300}}


async def _activity_case(r: Raw, i: int, wf: str, *, full_poll: bool = False, **act):
    """Starts a workflow with the `wf` timeouts on its own queue, schedules one activity with `act`,
    and returns the ActivityTaskScheduled timeouts and the activity poll's, or the error."""
    from temporalio.api.enums.v1 import WorkflowTaskFailedCause
    tq = f"{r.tq}-{i}"
    wid = r.new_id(f"acttimeout{i}")
    st = await r.start(wid, task_queue=TaskQueue(name=tq), **{k: dur(v) for k, v in _WF_TIMEOUTS[wf].items()})
    t = await r.poll_wft(TaskQueue(name=tq, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL))
    out = {}
    try:
        await r.complete(t.task_token, [_schedule_activity(tq, **act)])
    except RPCError as e:
        out["error"] = err_full(e)
        evs = await r.history(wid)
        failed = [e.workflow_task_failed_event_attributes for e in evs if etype(e) == "WORKFLOW_TASK_FAILED"]
        out["wft_failed"] = [WorkflowTaskFailedCause.Name(f.cause) for f in failed]
        out["wft_failure_is_error_message"] = [f.failure.message == e.message for f in failed]
        out["events"] = [etype(e) for e in evs]
    else:
        ev = (await r.history(wid))[-1]
        out["event_type"] = etype(ev)
        a = ev.activity_task_scheduled_event_attributes
        out["event"] = {"s2c": dval(a, "schedule_to_close_timeout"), "s2s": dval(a, "schedule_to_start_timeout"),
                        "stc": dval(a, "start_to_close_timeout"), "hb": dval(a, "heartbeat_timeout"),
                        "retry": _retry_dict(a)}
        p = await r.poll_activity(tq)
        out["poll"] = {"s2c": dval(p, "schedule_to_close_timeout"), "stc": dval(p, "start_to_close_timeout"),
                       "hb": dval(p, "heartbeat_timeout"), "retry": _retry_dict(p)}
        if full_poll:
            out["event_has_header"] = a.HasField("header")
            out["poll_fields"] = {
                "scheduled_time": p.HasField("scheduled_time"),
                "current_attempt_scheduled_time": p.HasField("current_attempt_scheduled_time"),
                "current_equals_scheduled": p.current_attempt_scheduled_time == p.scheduled_time,
                "started_time": p.HasField("started_time"), "header": p.HasField("header"),
                "header_fields": {k: decode(Payloads(payloads=[v])) for k, v in p.header.fields.items()},
                "heartbeat_details": p.HasField("heartbeat_details"),
                "workflow_namespace": p.workflow_namespace, "workflow_type": p.workflow_type.name,
                "workflow_execution": [p.workflow_execution.workflow_id == wid, p.workflow_execution.run_id == st.run_id],
                "activity_id": p.activity_id, "activity_type": p.activity_type.name, "attempt": p.attempt,
                "input": decode(p.input)}
    await r.svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
        namespace=NS, workflow_execution=r.ex(wid, st.run_id), reason="done", identity=IDENTITY))
    return out


@scenario
async def s34_activity_timeout_normalisation(r: Raw):
    """Which ScheduleActivityTask timeouts Temporal fills in and caps, and the default retry policy.
    "unset" = the Duration is absent; 0 = present with value zero (infinite)."""
    cases = {
        "inf_stc60": ("inf", dict(stc=60)),
        "inf_s2c60": ("inf", dict(s2c=60)),
        "inf_s2s1000_stc60": ("inf", dict(s2s=1000, stc=60)),
        "inf_stc100_s2c50": ("inf", dict(stc=100, s2c=50)),
        "inf_stc60_hb100": ("inf", dict(stc=60, hb=100)),
        "inf_s2c60_hb100": ("inf", dict(s2c=60, hb=100)),
        "inf_s2s100_s2c50": ("inf", dict(s2s=100, s2c=50)),
        "inf_s2s10_stc60": ("inf", dict(s2s=10, stc=60)),
        "inf_zero_stc_s2c60": ("inf", dict(stc=0, s2c=60)),
        "inf_zero_s2c_stc60": ("inf", dict(s2c=0, stc=60)),
        "inf_fractional_stc": ("inf", dict(stc=1.5)),
        "inf_all4": ("inf", dict(s2c=90, s2s=20, stc=30, hb=5)),
        "inf_retry_attempts3": ("inf", dict(stc=60, retry=RetryPolicy(maximum_attempts=3))),
        "inf_retry_initial2": ("inf", dict(stc=60, retry=RetryPolicy(initial_interval=dur(2)))),
        "inf_retry_full": ("inf", dict(stc=60, retry=RetryPolicy(
            initial_interval=dur(3), backoff_coefficient=1.5, maximum_interval=dur(7), maximum_attempts=4,
            non_retryable_error_types=["X"]))),
        "run120_stc60": ("run120_exec300", dict(stc=60)),
        "run120_s2c1000": ("run120_exec300", dict(s2c=1000)),
        "run120_stc1000": ("run120_exec300", dict(stc=1000)),
        "run120_s2s1000_stc60": ("run120_exec300", dict(s2s=1000, stc=60)),
        "run120_s2s10_stc60": ("run120_exec300", dict(s2s=10, stc=60)),
        "run120_stc60_hb100": ("run120_exec300", dict(stc=60, hb=100)),
        "run120_all4": ("run120_exec300", dict(s2c=90, s2s=20, stc=30, hb=5)),
        "exec300_stc60": ("exec300", dict(stc=60)),
        "exec300_s2c1000": ("exec300", dict(s2c=1000)),
    }
    out = {name: await _activity_case(r, i, wf, **act) for i, (name, (wf, act)) in enumerate(cases.items())}
    out["inf_stc60_header"] = await _activity_case(r, len(cases), "inf", full_poll=True, stc=60, header={"h": "hv"})
    out["inf_stc60_no_header"] = await _activity_case(r, len(cases) + 1, "inf", full_poll=True, stc=60)
    return out


@scenario
async def s35_activity_timeout_errors(r: Raw):
    """Invalid ScheduleActivityTask attributes: the gRPC error and the server-failed workflow task."""
    cases = {
        "none": ("inf", dict()),
        "s2s_only": ("inf", dict(s2s=60)),
        "hb_only": ("inf", dict(hb=10)),
        "zero_stc_only": ("inf", dict(stc=0)),
        "none_run120": ("run120_exec300", dict()),
        "s2s_only_run120": ("run120_exec300", dict(s2s=60)),
        "negative_stc": ("inf", dict(stc=-5)),
        "negative_s2c": ("inf", dict(s2c=-5)),
        "negative_s2s": ("inf", dict(s2s=-5, stc=60)),
        "negative_hb": ("inf", dict(hb=-5, stc=60)),
        "negative_hb_no_stc": ("inf", dict(hb=-5)),
        "negative_s2c_and_stc": ("inf", dict(s2c=-5, stc=-5)),
        "negative_s2s_and_stc": ("inf", dict(s2s=-5, stc=-5)),
        "retry_coefficient_half": ("inf", dict(stc=60, retry=RetryPolicy(backoff_coefficient=0.5))),
        "retry_max_below_initial": ("inf", dict(stc=60, retry=RetryPolicy(initial_interval=dur(10), maximum_interval=dur(5)))),
        "retry_max_below_default_initial": ("inf", dict(stc=60, retry=RetryPolicy(maximum_interval=dur(0.5)))),
        "retry_negative_attempts": ("inf", dict(stc=60, retry=RetryPolicy(maximum_attempts=-1))),
        "retry_negative_initial": ("inf", dict(stc=60, retry=RetryPolicy(initial_interval=dur(-1)))),
        "bad_retry_and_negative_stc": ("inf", dict(stc=-5, retry=RetryPolicy(backoff_coefficient=0.5))),
    }
    return {name: await _activity_case(r, i, wf, **act) for i, (name, (wf, act)) in enumerate(cases.items())}


def _uuid_shape(s: str) -> dict:
    """Version and variant of a UUID string (run ids are UUIDv7, RFC 9562)."""
    u = uuid.UUID(s)
    return {"version": u.version, "variant": u.variant, "canonical": str(u) == s}


@scenario
async def s36_run_id_uuid_versions(r: Raw):
    """Temporal 1.32 mints UUIDv7 run ids for StartWorkflowExecution and child starts, but v4 for
    continue-as-new and signal-with-start runs."""
    from temporalio.api.command.v1 import Command, StartChildWorkflowExecutionCommandAttributes
    from temporalio.api.enums.v1 import CommandType
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    wid = r.new_id("uuid7")
    a = await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [Command(
        command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        start_child_workflow_execution_command_attributes=StartChildWorkflowExecutionCommandAttributes(
            namespace=NS, workflow_id=wid + "-child", workflow_type=WorkflowType(name="DiffChild"),
            task_queue=TaskQueue(name=r.tq + "-child")))])
    t = await r.poll_wft()
    child = [e for e in t.history.events if etype(e) == "CHILD_WORKFLOW_EXECUTION_STARTED"]
    await r.complete(t.task_token, [cmd_continue_as_new(r.wf_type, r.tq, 1)])
    can = (await r.history(wid, a.run_id))[-1].workflow_execution_continued_as_new_event_attributes
    new_started = (await r.history(wid, can.new_execution_run_id))[0].workflow_execution_started_event_attributes
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_complete()])
    sws = await r.svc.signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest(
        namespace=NS, workflow_id=r.new_id("uuid7sws"), workflow_type=WorkflowType(name=r.wf_type),
        task_queue=TaskQueue(name=r.tq + "-sws"), signal_name="go", identity=IDENTITY, request_id=str(uuid.uuid4())))
    ns = await r.svc.describe_namespace(DescribeNamespaceRequest(namespace=NS))
    return {"started": _uuid_shape(a.run_id),
            "child": _uuid_shape(child[0].child_workflow_execution_started_event_attributes.workflow_execution.run_id)
            if child else None,
            "continued_as_new": _uuid_shape(can.new_execution_run_id),
            "continued_original_execution_run_id": new_started.original_execution_run_id == can.new_execution_run_id,
            "signal_with_start": _uuid_shape(sws.run_id),
            "_namespace_id": _uuid_shape(ns.namespace_info.id)}


@scenario
async def s37_health_check(r: Raw):
    """grpc.health.v1.Health/Check on the frontend port."""
    from temporalio.bridge.proto.health.v1 import HealthCheckRequest, HealthCheckResponse
    out = {}
    for label, service in [("empty", ""), ("workflow_service", "temporal.api.workflowservice.v1.WorkflowService"),
                           ("unknown", "no.such.v1.Service")]:
        try:
            resp = await r.client.service_client.health_service.check(HealthCheckRequest(service=service))
            out[label] = {"code": "OK", "status": HealthCheckResponse.ServingStatus.Name(resp.status)}
        except RPCError as e:
            out[label] = err_full(e)
    try:
        resp = await r.client.service_client.health_service.check(
            HealthCheckRequest(service="temporal.api.operatorservice.v1.OperatorService"))
        out["_operator_service"] = HealthCheckResponse.ServingStatus.Name(resp.status)
    except RPCError as e:
        out["_operator_service"] = err_full(e)
    return out


@scenario
async def s38_history_malformed_page_token(r: Raw):
    def get(wid, token, run_id=""):
        return r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=NS, execution=r.ex(wid, run_id), next_page_token=token))
    wid = r.new_id("badtoken")
    a = await r.start(wid)
    return {
        "missing_workflow": await expect_error_full(get(r.new_id("nosuch"), b"garbage")),
        "existing_workflow": await expect_error_full(get(wid, b"garbage")),
        "existing_workflow_with_run_id": await expect_error_full(get(wid, b"garbage", a.run_id)),
        "existing_workflow_binary": await expect_error_full(get(wid, b"\xff\x00not-a-token")),
        # a token that parses as Temporal's own token format: its outcome depends on that format
        "_existing_workflow_proto_like_with_run_id": await expect_error_full(get(wid, b"\x08\x01", a.run_id)),
    }


def _bool_fields(msg) -> dict:
    """Every bool field of a message (including false ones), by name."""
    return {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields if f.type == f.TYPE_BOOL}


# GetSystemInfo capabilities a server with Sundial's feature set advertises like Temporal does; the
# others (schedules, versioning, eager start, nexus, ...) are recorded under "_system_capabilities".
_COMPARED_SYSTEM_CAPABILITIES = ("signal_and_query_header", "internal_error_differentiation",
                                 "activity_failure_include_heartbeat", "encoded_failure_attributes",
                                 "upsert_memo", "sdk_metadata")


@scenario
async def s39_namespace_and_system_info(r: Raw):
    from temporalio.api.enums.v1 import ArchivalState, NamespaceState, ReplicationState
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
    d = await r.svc.describe_namespace(DescribeNamespaceRequest(namespace=NS))
    info, cfg, rep = d.namespace_info, d.config, d.replication_config
    si = await r.svc.get_system_info(GetSystemInfoRequest())
    caps = _bool_fields(si.capabilities)
    return {
        "namespace": {
            "name": info.name, "state": NamespaceState.Name(info.state), "description": info.description,
            "owner_email": info.owner_email, "data": dict(info.data), "id_set": bool(info.id),
            "info_present": present(info),
            "blob_size_limit_error": info.limits.blob_size_limit_error,
            "retention": dval(cfg, "workflow_execution_retention_ttl"),
            "history_archival_state": ArchivalState.Name(cfg.history_archival_state),
            "history_archival_uri": cfg.history_archival_uri,
            "visibility_archival_state": ArchivalState.Name(cfg.visibility_archival_state),
            "visibility_archival_uri": cfg.visibility_archival_uri,
            "bad_binaries": dict(cfg.bad_binaries.binaries), "config_present": present(cfg),
            "active_cluster_name": rep.active_cluster_name, "clusters": [c.cluster_name for c in rep.clusters],
            "replication_state": ReplicationState.Name(rep.state),
            "is_global_namespace": d.is_global_namespace, "failover_version": d.failover_version,
            "failover_history": len(d.failover_history), "response_present": present(d),
        },
        # Sundial enforces no memo or completion size limit of its own yet, so it advertises none.
        "_limits": {f.name: getattr(info.limits, f.name) for f in info.limits.DESCRIPTOR.fields},
        "_namespace_capabilities": _bool_fields(info.capabilities),
        "_namespace_supports_schedules": info.supports_schedules,
        # the harness's --search-attribute names (SQLite visibility maps them to column aliases, whose
        # numbering varies run to run)
        "_custom_search_attribute_alias_names": sorted(cfg.custom_search_attribute_aliases.values()),
        "server_version": si.server_version,
        "system_capabilities": {k: caps[k] for k in _COMPARED_SYSTEM_CAPABILITIES},
        "_system_capabilities": caps,
    }


def _timestamp_kind(ts) -> str:
    """A Timestamp's value class: Temporal reports "no deadline" as Go's zero time (0001-01-01T00:00:00Z)."""
    if ts.seconds == -62135596800 and ts.nanos == 0:
        return "0001-01-01T00:00:00Z"
    if ts.seconds == 0 and ts.nanos == 0:
        return "1970-01-01T00:00:00Z"
    return "other"


def _describe_shape(d) -> dict:
    """Which sub-messages a DescribeWorkflowExecutionResponse carries, and how many repeated entries."""
    from temporalio.api.enums.v1 import PendingWorkflowTaskState, WorkflowExecutionStatus
    info = d.workflow_execution_info
    out = {
        "response": present(d),
        "execution_info": present(info),
        "execution_config": present(d.execution_config),
        "extended_info": present(d.workflow_extended_info),
        "run_expiration_time": _timestamp_kind(d.workflow_extended_info.run_expiration_time),
        "repeated": {f.name: len(getattr(d, f.name)) for f in d.DESCRIPTOR.fields if f.is_repeated},
        "status": WorkflowExecutionStatus.Name(info.status),
        "history_length": info.history_length,
    }
    if d.HasField("pending_workflow_task"):
        p = d.pending_workflow_task
        out["pending_workflow_task"] = {"present": present(p), "state": PendingWorkflowTaskState.Name(p.state),
                                        "attempt": p.attempt}
    if d.pending_activities:
        from temporalio.api.enums.v1 import PendingActivityState
        a = d.pending_activities[0]
        out["pending_activity"] = {"present": present(a), "state": PendingActivityState.Name(a.state),
                                   "attempt": a.attempt, "maximum_attempts": a.maximum_attempts,
                                   "activity_id": a.activity_id,
                                   "options_present": present(a.activity_options)}
    return out


@scenario
async def s40_describe_field_presence(r: Raw):
    wid = r.new_id("describe")
    await r.start(wid)

    async def describe():
        return _describe_shape(await r.svc.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(wid))))
    out = {"wft_scheduled": await describe()}
    t = await r.poll_wft()
    out["wft_started"] = await describe()
    await r.complete(t.task_token, [cmd_activity("a1", "nobody-" + r.tq, stc=60), cmd_timer("t1", 60)])
    out["idle_with_activity_and_timer"] = await describe()
    await r.signal(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_complete()])
    out["completed"] = await describe()
    return out


def _md_payload(text: str, **extra: bytes):
    from temporalio.api.common.v1 import Payload
    import json as _json
    return Payload(metadata={"encoding": b"json/plain", **extra}, data=_json.dumps(text).encode())


def _md_shape(holder, sent) -> dict:
    """A message's user_metadata: presence, the payloads as text, and byte equality with what was sent."""
    if not holder.HasField("user_metadata"):
        return {"present": False}
    m = holder.user_metadata
    out = {"present": True}
    for part in ("summary", "details"):
        if m.HasField(part):
            p = getattr(m, part)
            out[part] = {"metadata": {k: v.decode() for k, v in sorted(p.metadata.items())}, "data": p.data.decode(),
                         "same_bytes": p.SerializeToString(deterministic=True) ==
                         getattr(sent, part).SerializeToString(deterministic=True)}
        else:
            out[part] = "unset"
    return out


@scenario
async def s41_user_metadata(r: Raw):
    """user_metadata (summary/details payloads) on the start request and on commands comes back
    byte-exact in the events and in DescribeWorkflowExecution's execution_config."""
    from temporalio.api.command.v1 import Command, StartChildWorkflowExecutionCommandAttributes
    from temporalio.api.enums.v1 import CommandType
    from temporalio.api.sdk.v1 import UserMetadata
    wf_md = UserMetadata(summary=_md_payload("workflow summary"),
                         details=_md_payload("workflow **details**", extra=b"x"))
    act_md = UserMetadata(summary=_md_payload("activity summary"))
    timer_md = UserMetadata(details=_md_payload("timer details"))
    child_md = UserMetadata(summary=_md_payload("child summary"), details=_md_payload("child details"))
    done_md = UserMetadata(summary=_md_payload("completion summary"))
    pid = r.new_id("usermd")
    cid = pid + "-child"
    await r.start(pid, user_metadata=wf_md)
    t = await r.poll_wft()
    first_poll = _md_shape(t.history.events[0], wf_md)
    act = cmd_activity("a1", "nobody-" + r.tq, stc=60)
    act.user_metadata.CopyFrom(act_md)
    timer = cmd_timer("t1", 60)
    timer.user_metadata.CopyFrom(timer_md)
    child = Command(command_type=CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION, user_metadata=child_md,
                    start_child_workflow_execution_command_attributes=StartChildWorkflowExecutionCommandAttributes(
                        namespace=NS, workflow_id=cid, workflow_type=WorkflowType(name="DiffChild"),
                        task_queue=TaskQueue(name=r.tq + "-child")))
    await r.complete(t.task_token, [act, timer, child])
    evs = await r.wait_for_event(pid, "CHILD_WORKFLOW_EXECUTION_STARTED")
    by_type = {etype(e): e for e in evs}
    t = await r.poll_wft()
    done = cmd_complete()
    done.user_metadata.CopyFrom(done_md)
    await r.complete(t.task_token, [done])
    evs = await r.history(pid)
    by_type.update({etype(e): e for e in evs})
    pd = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(pid)))
    cevs = await r.history(cid)
    cd = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(cid)))
    return {
        "workflow_started_event": _md_shape(by_type["WORKFLOW_EXECUTION_STARTED"], wf_md),
        "workflow_started_in_poll": first_poll,
        "describe": _md_shape(pd.execution_config, wf_md),
        "activity_scheduled_event": _md_shape(by_type["ACTIVITY_TASK_SCHEDULED"], act_md),
        "timer_started_event": _md_shape(by_type["TIMER_STARTED"], timer_md),
        "child_initiated_event": _md_shape(by_type["START_CHILD_WORKFLOW_EXECUTION_INITIATED"], child_md),
        "child_started_event_in_parent": _md_shape(by_type["CHILD_WORKFLOW_EXECUTION_STARTED"], child_md),
        "child_own_started_event": _md_shape(cevs[0], child_md),
        "child_describe": _md_shape(cd.execution_config, child_md),
        "completed_event": _md_shape(by_type["WORKFLOW_EXECUTION_COMPLETED"], done_md),
        "events_with_metadata": [etype(e) for e in evs if e.HasField("user_metadata")],
    }


def _wft_started_suggest(e) -> dict:
    from temporalio.api.enums.v1 import SuggestContinueAsNewReason
    a = e.workflow_task_started_event_attributes
    return {"suggest": a.suggest_continue_as_new,
            "reasons": [SuggestContinueAsNewReason.Name(x) for x in a.suggest_continue_as_new_reasons],
            "history_size_positive": a.history_size_bytes > 0,
            "history_size_over_4MiB": a.history_size_bytes > 4 * 1024 * 1024}


@scenario
async def s42_suggest_continue_as_new(r: Raw):
    """WorkflowTaskStarted's suggest_continue_as_new for a small history, and once the history passes
    Temporal's default limit.historySize.suggestContinueAsNew (4 MiB) through three 1.5 MiB signals.
    (The count limit, limit.historyCount.suggestContinueAsNew, defaults to 4096 events: too slow to reach here.)
    Temporal's history_size_bytes was about 240 for the first task and about 4,719,390 after the signals; it
    varies by a few bytes run to run (timestamp encodings), so only its range is compared."""
    wid = r.new_id("suggestcan")
    await r.start(wid)
    t = await r.poll_wft()
    small_poll = [e for e in t.history.events if etype(e) == "WORKFLOW_TASK_STARTED"][-1]
    await r.complete(t.task_token, [])
    small_hist = [e for e in await r.history(wid) if etype(e) == "WORKFLOW_TASK_STARTED"][-1]
    big = "z" * (1536 * 1024)
    for _ in range(3):
        await r.signal(wid, value=big)
    t = await r.poll_wft()
    evs = list(t.history.events)
    token = t.next_page_token
    for _ in range(20):  # the poll's history may come in pages
        if not token:
            break
        resp = await r.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=NS, execution=t.workflow_execution, next_page_token=token))
        evs += list(resp.history.events)
        token = resp.next_page_token
    big_poll = [e for e in evs if etype(e) == "WORKFLOW_TASK_STARTED"][-1]
    await r.complete(t.task_token, [cmd_complete()])
    big_hist = [e for e in await r.history(wid) if etype(e) == "WORKFLOW_TASK_STARTED"][-1]
    return {"small_poll": _wft_started_suggest(small_poll), "small_history": _wft_started_suggest(small_hist),
            "small_history_size_under_1KiB": small_hist.workflow_task_started_event_attributes.history_size_bytes < 1024,
            "big_poll": _wft_started_suggest(big_poll), "big_history": _wft_started_suggest(big_hist),
            "big_started_event_id": big_hist.event_id,
            "events": await r.types(wid)}


def _stamp(msg, field: str):
    if not msg.HasField(field):
        return "unset"
    v = getattr(msg, field)
    return {"build_id": v.build_id, "use_versioning": v.use_versioning}


@scenario
async def s43_worker_build_id(r: Raw):
    """A worker polls with a build id (worker_version_capabilities, or deployment_options in UNVERSIONED
    mode) and completes with it: what WorkflowTaskStarted/Completed and DescribeWorkflowExecution record.
    (Versioned pollers of a deployment version that is not current get no tasks, so they are left out.)"""
    from datetime import timedelta
    from temporalio.api.common.v1 import WorkerVersionCapabilities, WorkerVersionStamp
    from temporalio.api.deployment.v1 import WorkerDeploymentOptions
    from temporalio.api.enums.v1 import VersioningBehavior, WorkerVersioningMode
    from temporalio.api.workflowservice.v1 import PollWorkflowTaskQueueRequest
    caps = WorkerVersionCapabilities(build_id="build-1")
    dep = WorkerDeploymentOptions(deployment_name="diff-deployment", build_id="build-2",
                                  worker_versioning_mode=WorkerVersioningMode.WORKER_VERSIONING_MODE_UNVERSIONED)
    cases = {
        "capabilities_and_stamp": ({"worker_version_capabilities": caps},
                                   {"worker_version_stamp": WorkerVersionStamp(build_id="build-1")}),
        "capabilities_no_stamp": ({"worker_version_capabilities": caps}, {}),
        "deployment_unversioned": ({"deployment_options": dep}, {"deployment_options": dep}),
    }
    out = {}
    for i, (name, (poll_kw, done_kw)) in enumerate(cases.items()):
        tq = f"{r.tq}-{i}"
        wid = r.new_id(f"buildid{i}")
        await r.start(wid, task_queue=TaskQueue(name=tq))
        t = await r.svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace=NS, task_queue=TaskQueue(name=tq, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL), identity=IDENTITY,
            **poll_kw), timeout=timedelta(seconds=10))
        assert t.task_token, f"[{r.label}] empty poll for {name}"
        poll_started = t.history.events[-1].workflow_task_started_event_attributes
        await r.complete(t.task_token, [cmd_timer("t1", 60)], **done_kw)
        evs = await r.history(wid)
        st = [e for e in evs if etype(e) == "WORKFLOW_TASK_STARTED"][0].workflow_task_started_event_attributes
        co = [e for e in evs if etype(e) == "WORKFLOW_TASK_COMPLETED"][0].workflow_task_completed_event_attributes
        d = await r.svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(namespace=NS, execution=r.ex(wid)))
        info = d.workflow_execution_info
        out[name] = {
            "started": {"worker_version": _stamp(st, "worker_version"),
                        "build_id_redirect_counter": st.build_id_redirect_counter},
            "started_in_poll": {"worker_version": _stamp(poll_started, "worker_version"),
                                "build_id_redirect_counter": poll_started.build_id_redirect_counter},
            "completed": {"worker_version": _stamp(co, "worker_version"), "binary_checksum": co.binary_checksum,
                          "deployment": co.HasField("deployment"),
                          "versioning_behavior": VersioningBehavior.Name(co.versioning_behavior),
                          "worker_deployment_version": co.worker_deployment_version,
                          "worker_deployment_name": co.worker_deployment_name,
                          "deployment_version": co.HasField("deployment_version"),
                          "present": present(co)},
            "describe": {"most_recent_worker_version_stamp": _stamp(info, "most_recent_worker_version_stamp"),
                         "assigned_build_id": info.assigned_build_id, "inherited_build_id": info.inherited_build_id,
                         "worker_deployment_name": info.worker_deployment_name,
                         "versioning_info": info.HasField("versioning_info")},
        }
        await r.svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
            namespace=NS, workflow_execution=r.ex(wid), reason="done", identity=IDENTITY))
    return out


def _query_error(e: RPCError) -> dict:
    out = err_full(e)
    from temporalio.api.errordetails.v1 import QueryFailedFailure
    for d in e.grpc_status.details:
        if d.type_url.endswith("QueryFailedFailure"):
            f = QueryFailedFailure()
            d.Unpack(f)
            out["query_failed_failure"] = {"has_failure": f.HasField("failure"), "failure_message": f.failure.message}
    return out


@scenario
async def s44_query_result_over_blob_limit(r: Raw):
    """A worker answers a query with a result over limit.blobSize.error (2 MiB), as a legacy query
    task and as an attached query: what the worker's RPC and the caller get."""
    from datetime import timedelta
    big = "q" * (2 * 1024 * 1024 + 100)
    under = "u" * (1024 * 1024)

    def query(wid):
        return r.svc.query_workflow(QueryWorkflowRequest(namespace=NS, execution=r.ex(wid),
                                                         query=WorkflowQuery(query_type="state")),
                                    timeout=timedelta(seconds=30))

    async def caller(wid):
        try:
            resp = await query(wid)
            return {"code": "OK", "result_len": len(decode(resp.query_result)[0])}
        except RPCError as e:
            return _query_error(e)

    async def legacy(value):
        wid = r.new_id("bigquery")
        await r.start(wid)
        t = await r.poll_wft()
        await r.complete(t.task_token, [])

        async def worker():
            q = await r.poll_wft()
            return await expect_error_full(r.svc.respond_query_task_completed(RespondQueryTaskCompletedRequest(
                namespace=NS, task_token=q.task_token, completed_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED,
                query_result=payloads(value))))
        w = asyncio.ensure_future(worker())
        got = await caller(wid)
        return {"caller": got, "worker_respond": await w, "events": await r.types(wid)}

    async def attached(value):
        wid = r.new_id("bigquery")
        await r.start(wid)  # workflow task pending: the query rides on it
        qt = asyncio.ensure_future(caller(wid))
        await asyncio.sleep(0.5)
        t = await r.poll_wft()
        answers = {k: WorkflowQueryResult(result_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED, answer=payloads(value))
                   for k in t.queries}
        done = await expect_error_full(r.complete(t.task_token, [], query_results=answers))
        if not t.queries:  # not attached: answer it as a legacy task instead
            q = await r.poll_wft()
            await r.svc.respond_query_task_completed(RespondQueryTaskCompletedRequest(
                namespace=NS, task_token=q.task_token, completed_type=QueryResultType.QUERY_RESULT_TYPE_ANSWERED,
                query_result=payloads(value)))
        return {"attached": len(t.queries), "caller": await qt, "worker_complete": done, "events": await r.types(wid)}

    return {"legacy_over": await legacy(big), "legacy_under": await legacy(under),
            "attached_over": await attached(big), "attached_under": await attached(under)}


@scenario
async def s45_return_new_workflow_task(r: Raw):
    """A completion asking for the next task gets the task it creates, started, in its response:
    with force_create_new_workflow_task (the SDKs' workflow task heartbeat while a local activity
    runs), and when a signal arrived while the task was running. Without the flag, no task comes
    back and the next one is dispatched."""
    wid = r.new_id("inline")
    await r.start(wid)
    t = await r.poll_wft()
    resp = await r.complete(t.task_token, [], force_create_new_workflow_task=True, return_new_workflow_task=True)
    heartbeat = resp.workflow_task
    out = {
        "heartbeat_present": resp.HasField("workflow_task"),
        "heartbeat_attempt": heartbeat.attempt,
        "heartbeat_started_event_id": heartbeat.started_event_id,
        "heartbeat_previous_started": heartbeat.previous_started_event_id,
        "heartbeat_history": [etype(e) for e in heartbeat.history.events],
        "heartbeat_present_fields": present(heartbeat),
    }
    await r.signal(wid, "during")
    resp2 = await r.complete(heartbeat.task_token, [], return_new_workflow_task=True)
    signalled = resp2.workflow_task
    out["signalled_present"] = resp2.HasField("workflow_task")
    out["signalled_history"] = [etype(e) for e in signalled.history.events]
    await r.signal(wid, "again")
    resp3 = await r.complete(signalled.task_token, [])
    out["no_flag_present"] = resp3.HasField("workflow_task")
    t3 = await r.poll_wft()
    out["polled_history_tail"] = [etype(e) for e in t3.history.events][-3:]
    await r.complete(t3.task_token, [cmd_complete("done")])
    out["final"] = [etype(e) for e in await r.history(wid)]
    return out


# ---------------------------------------------------------------- tier2.md §1: workflow updates


def _update_request(wid: str, update_id: str, name: str = "add", stage: int = 3, **kw):
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.update.v1 import Input, Meta, Request, WaitPolicy
    from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionRequest
    return UpdateWorkflowExecutionRequest(
        namespace=NS, workflow_execution=WorkflowExecution(workflow_id=wid, **kw),
        wait_policy=WaitPolicy(lifecycle_stage=stage),
        request=Request(meta=Meta(update_id=update_id, identity=IDENTITY),
                        input=Input(name=name, args=payloads("x"))))


def _protocol(message_id: str):
    from temporalio.api.command.v1 import Command, ProtocolMessageCommandAttributes
    from temporalio.api.enums.v1 import CommandType
    return Command(command_type=CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE,
                   protocol_message_command_attributes=ProtocolMessageCommandAttributes(message_id=message_id))


def _answer(request_msg, kind: str, result=None):
    """The worker's message for an update request: accept, reject or complete (as sdk-core names them)."""
    from temporalio.api.protocol.v1 import Message
    from temporalio.api.update.v1 import Acceptance, Meta, Outcome, Rejection, Request, Response
    req = Request()
    request_msg.body.Unpack(req)
    seq = request_msg.event_id
    if kind == "accept":
        body = Acceptance(accepted_request_message_id=request_msg.id,
                          accepted_request_sequencing_event_id=seq, accepted_request=req)
    elif kind == "reject":
        body = Rejection(rejected_request_message_id=request_msg.id,
                         rejected_request_sequencing_event_id=seq, rejected_request=req,
                         failure=Failure(message="rejected"))
    else:
        body = Response(meta=Meta(update_id=request_msg.protocol_instance_id),
                        outcome=Outcome(success=payloads(result)))
    m = Message(id=f"{request_msg.id}/{kind}", protocol_instance_id=request_msg.protocol_instance_id)
    m.body.Pack(body)
    return m


def _update_response(resp) -> dict:
    outcome = resp.outcome
    return {
        "stage": resp.stage,
        "outcome": (decode(outcome.success) if outcome.HasField("success")
                    else outcome.failure.message if outcome.HasField("failure") else None),
        "present": present(resp),
        "ref_run_id_set": bool(resp.update_ref.workflow_execution.run_id),
        "link": _link(resp.link) if resp.HasField("link") else None,
    }


def _link(link) -> dict:
    kind = link.WhichOneof("variant")
    if kind == "workflow":
        return {"kind": kind, "reason": link.workflow.reason, "run_set": bool(link.workflow.run_id)}
    if kind == "workflow_event":
        ev = link.workflow_event
        ref = ev.WhichOneof("reference")
        return {"kind": kind, "ref": ref, "run_set": bool(ev.run_id), "namespace": ev.namespace,
                "event_type": getattr(ev, ref).event_type if ref else None}
    return {"kind": kind}


@scenario
async def s46_update_protocol(r: Raw):
    """An update to an idle run: the speculative task's messages and events, a rejection that
    leaves no trace (and the reset id), an accepted and completed update, the same id again
    (its stored outcome), PollWorkflowExecutionUpdate, and a new update on the closed run."""
    from temporalio.api.update.v1 import UpdateRef, WaitPolicy
    from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
    wid = r.new_id("upd")
    await r.start(wid)
    t = await r.poll_wft()
    await r.complete(t.task_token, [])
    out = {}
    call = asyncio.ensure_future(r.svc.update_workflow_execution(_update_request(wid, "u-no")))
    t = await r.poll_wft()
    msg = t.messages[0]
    out["rejected_task"] = {
        "started": t.started_event_id, "previous": t.previous_started_event_id,
        "history_tail": [etype(e) for e in t.history.events][-2:],
        "message_id": msg.id, "instance": msg.protocol_instance_id, "event_id": msg.event_id,
        "body": msg.body.type_url.rsplit(".", 1)[-1],
    }
    done = await r.complete(t.task_token, [], messages=[_answer(msg, "reject")])
    out["reset_history_event_id"] = done.reset_history_event_id
    out["rejected"] = _update_response(await call)
    out["after_rejection"] = await r.types(wid)
    call = asyncio.ensure_future(r.svc.update_workflow_execution(_update_request(wid, "u-yes")))
    t = await r.poll_wft()
    msg = t.messages[0]
    accept, complete = _answer(msg, "accept"), _answer(msg, "complete", "ok")
    await r.complete(t.task_token, [_protocol(accept.id), _protocol(complete.id)], messages=[accept, complete])
    out["accepted"] = _update_response(await call)
    out["again"] = _update_response(await r.svc.update_workflow_execution(_update_request(wid, "u-yes")))
    polled = await r.svc.poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest(
        namespace=NS, update_ref=UpdateRef(workflow_execution=r.ex(wid), update_id="u-yes"),
        identity=IDENTITY, wait_policy=WaitPolicy(lifecycle_stage=3)))
    out["polled"] = {"stage": polled.stage, "outcome": decode(polled.outcome.success)}
    out["poll_rejected"] = await expect_error(r.svc.poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest(
        namespace=NS, update_ref=UpdateRef(workflow_execution=r.ex(wid), update_id="u-no"),
        identity=IDENTITY, wait_policy=WaitPolicy(lifecycle_stage=3))))
    evs = await r.history(wid)
    accepted = evs[-2].workflow_execution_update_accepted_event_attributes
    out["accepted_event"] = {
        "instance": accepted.protocol_instance_id, "message_id": accepted.accepted_request_message_id,
        "sequencing": accepted.accepted_request_sequencing_event_id,
        "name": accepted.accepted_request.input.name,
        "completed_points_back": evs[-1].workflow_execution_update_completed_event_attributes.accepted_event_id,
    }
    out["history"] = [etype(e) for e in evs]
    t = None
    call = asyncio.ensure_future(r.svc.update_workflow_execution(_update_request(wid, "u-last", stage=2)))
    t = await r.poll_wft()
    await r.complete(t.task_token, [cmd_complete("fin")], messages=[_answer(t.messages[0], "accept")])
    try:
        out["accepted_then_closed"] = _update_response(await call)
    except RPCError as e:
        out["accepted_then_closed"] = err_full(e)
    out["closed_new"] = {**(await expect_error(r.svc.update_workflow_execution(_update_request(wid, "u-new"))))}
    out["final"] = await r.types(wid)
    return out


@scenario
async def s47_update_with_start(r: Raw):
    """ExecuteMultiOperation: a new run whose first task carries the update, the same update id
    again on the running run, a FAIL-policy conflict and a bad operation list with their error
    shapes (per-operation codes and detail types)."""
    from temporalio.api.errordetails.v1 import MultiOperationExecutionFailure
    from temporalio.api.workflowservice.v1 import (
        ExecuteMultiOperationRequest, StartWorkflowExecutionRequest,
    )
    wid = r.new_id("uws")

    def start(policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_FAIL):
        return StartWorkflowExecutionRequest(
            namespace=NS, workflow_id=wid, workflow_type=WorkflowType(name="DiffWorkflow"),
            task_queue=TaskQueue(name=r.tq), identity=IDENTITY, request_id=str(uuid.uuid4()),
            workflow_id_conflict_policy=policy)

    def multi(start_req, update_req, swap=False):
        ops = [ExecuteMultiOperationRequest.Operation(start_workflow=start_req),
               ExecuteMultiOperationRequest.Operation(update_workflow=update_req)]
        return ExecuteMultiOperationRequest(namespace=NS, operations=ops[::-1] if swap else ops)

    async def multi_error(req):
        try:
            await r.svc.execute_multi_operation(req)
        except RPCError as e:
            info = err_full(e)
            statuses = []
            for d in e.grpc_status.details:
                if d.type_url.endswith("MultiOperationExecutionFailure"):
                    f = MultiOperationExecutionFailure()
                    d.Unpack(f)
                    statuses = [{"code": s.code, "message": s.message if s.code in (3, 10) else "",
                                 "details": [x.type_url.rsplit(".", 1)[-1] for x in s.details]}
                                for s in f.statuses]
            return {**info, "statuses": statuses}
        return {"code": "OK"}

    out = {}
    call = asyncio.ensure_future(r.svc.execute_multi_operation(multi(start(), _update_request(wid, "u1"))))
    t = await r.poll_wft()
    msg = t.messages[0]
    out["first_task"] = {"started": t.started_event_id, "event_id": msg.event_id, "message_id": msg.id}
    accept, complete = _answer(msg, "accept"), _answer(msg, "complete", "first")
    await r.complete(t.task_token, [_protocol(accept.id), _protocol(complete.id)], messages=[accept, complete])
    resp = await call
    s, u = resp.responses[0].start_workflow, resp.responses[1].update_workflow
    out["started"] = {"started": s.started, "status": s.status, "update": _update_response(u)}
    again = await r.svc.execute_multi_operation(multi(start(), _update_request(wid, "u1")))
    s2 = again.responses[0].start_workflow
    out["again"] = {"started": s2.started, "same_run": s2.run_id == s.run_id, "status": s2.status,
                    "update": _update_response(again.responses[1].update_workflow)}
    out["conflict"] = await multi_error(multi(start(), _update_request(wid, "u2")))
    out["swapped"] = await multi_error(multi(start(), _update_request(wid, "u2"), swap=True))
    out["run_id_set"] = await multi_error(multi(start(), _update_request(wid, "u2", run_id=s.run_id)))
    out["history"] = await r.types(wid)
    return out
