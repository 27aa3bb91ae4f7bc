"""Python SDK end-to-end suite: issue 2 point 2, every bullet at least once.

Runs against SUNDIAL_TEST_TARGET (sundial by default, or temporal for the oracle).
"""
import asyncio
import os
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType, IndexedValueType
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    GetSystemInfoRequest,
    GetWorkflowExecutionHistoryRequest,
    ListNamespacesRequest,
    PollWorkflowTaskQueueRequest,
    RegisterNamespaceRequest,
    UpdateNamespaceRequest,
)
from temporalio.api.namespace.v1 import UpdateNamespaceInfo
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    TerminatedError,
    TimeoutError as TTimeoutError,
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from google.protobuf.duration_pb2 import Duration

import wf_defs
from wf_defs import (
    ActivityScenarioWorkflow, ContinueAsNewWorkflow, ExternalWorkflow, HelloWorkflow, InfoWorkflow,
    ManySignalsWorkflow, MarkersWorkflow, ParentWorkflow, SleepWorkflow, TaskFailOnceWorkflow,
    RandomWorkflow, ShortTaskTimeoutWorkflow, TimerCancelWorkflow, UpsertWorkflow, WaitSignalWorkflow, ChildWorkflow,
)

TQ = "py-e2e"


def etypes(history):
    return [EventType.Name(e.event_type).replace("EVENT_TYPE_", "") for e in history.events]


async def history_types(client, wid, run_id=None):
    return etypes(await client.get_workflow_handle(wid, run_id=run_id).fetch_history())


async def wait_status(handle, status, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        d = await handle.describe()
        if d.status == status:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"status {d.status} != {status}")
        await asyncio.sleep(0.2)


# ------------------------------------------------------------------ start


def test_start_and_result(env, wid):
    async def go():
        h = await env.client.start_workflow(HelloWorkflow.run, "Sundial", id=wid, task_queue=TQ)
        assert h.result_run_id
        assert await h.result() == "Hello, Sundial!"
        types = await history_types(env.client, wid)
        assert types == [
            "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED",
            "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED",
        ]
    env.run(go())


def test_already_started_error_details(env, wid):
    async def go():
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        with pytest.raises(WorkflowAlreadyStartedError) as ei:
            await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        assert ei.value.workflow_id == wid
        assert ei.value.run_id == h.result_run_id
        # USE_EXISTING returns the running run instead of failing.
        h2 = await env.client.start_workflow(
            WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        assert h2.result_run_id == h.result_run_id
        await h.signal(WaitSignalWorkflow.finish)
        assert await h.result() == []
    env.run(go())


def test_conflict_terminate_existing(env, wid):
    async def go():
        h1 = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        h2 = await env.client.start_workflow(
            WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ,
            id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING,
        )
        assert h2.result_run_id != h1.result_run_id
        d1 = await env.client.get_workflow_handle(wid, run_id=h1.result_run_id).describe()
        assert d1.status == WorkflowExecutionStatus.TERMINATED
        hist = await env.client.get_workflow_handle(wid, run_id=h1.result_run_id).fetch_history()
        last = hist.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        d2 = await h2.describe()
        assert d2.status == WorkflowExecutionStatus.RUNNING
        await h2.signal(WaitSignalWorkflow.finish)
        await h2.result()
    env.run(go())


def test_id_reuse_policies(env, wid):
    async def go():
        h = await env.client.start_workflow(HelloWorkflow.run, "a", id=wid, task_queue=TQ)
        await h.result()
        # Closed COMPLETED: REJECT_DUPLICATE and ALLOW_DUPLICATE_FAILED_ONLY refuse.
        for pol in (WorkflowIDReusePolicy.REJECT_DUPLICATE, WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY):
            with pytest.raises(WorkflowAlreadyStartedError):
                await env.client.start_workflow(HelloWorkflow.run, "b", id=wid, task_queue=TQ, id_reuse_policy=pol)
        # ALLOW_DUPLICATE (the default) makes a new run.
        h2 = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        assert h2.result_run_id != h.result_run_id
        await h2.terminate(reason="make it fail-ish")
        # Closed TERMINATED: ALLOW_DUPLICATE_FAILED_ONLY accepts.
        h3 = await env.client.start_workflow(
            HelloWorkflow.run, "c", id=wid, task_queue=TQ,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        assert await h3.result() == "Hello, c!"
    env.run(go())


def test_execution_timeout(env, wid):
    async def go():
        h = await env.client.start_workflow(
            SleepWorkflow.run, 60.0, id=wid, task_queue=TQ, execution_timeout=timedelta(seconds=2)
        )
        with pytest.raises(WorkflowFailureError) as ei:
            await h.result()
        assert isinstance(ei.value.cause, TTimeoutError)
        d = await h.describe()
        assert d.status == WorkflowExecutionStatus.TIMED_OUT
        types = await history_types(env.client, wid)
        assert types[-1] == "WORKFLOW_EXECUTION_TIMED_OUT"
        assert "TIMER_STARTED" in types
    env.run(go())


def test_run_timeout_and_info(env, wid):
    async def go():
        h = await env.client.start_workflow(
            InfoWorkflow.run, 0, id=wid, task_queue=TQ, run_timeout=timedelta(seconds=30),
            execution_timeout=timedelta(seconds=60),
        )
        r = await h.result()
        assert r["run_timeout"] == 30 and r["execution_timeout"] == 60
        hist = await h.fetch_history()
        a = hist.events[0].workflow_execution_started_event_attributes
        assert a.workflow_run_timeout.seconds == 30
        assert a.workflow_execution_timeout.seconds == 60
        assert a.workflow_task_timeout.seconds == 10  # server default
        # A run timeout ends the run.
        h2 = await env.client.start_workflow(
            SleepWorkflow.run, 60.0, id=wid + "-rt", task_queue=TQ, run_timeout=timedelta(seconds=2)
        )
        with pytest.raises(WorkflowFailureError) as ei:
            await h2.result()
        assert isinstance(ei.value.cause, TTimeoutError)
        assert (await h2.describe()).status == WorkflowExecutionStatus.TIMED_OUT
    env.run(go())


def test_memo_and_headers(env, wid):
    async def go():
        h = await env.hclient.start_workflow(
            InfoWorkflow.run, 0, id=wid, task_queue=TQ, memo={"k": "memo-value"}
        )
        r = await h.result()
        assert r["header"] == "header-value-42"
        assert r["memo"] == "memo-value"
        d = await h.describe()
        assert await d.memo_value("k") == "memo-value"
        hist = await h.fetch_history()
        assert "x-sundial-test" in hist.events[0].workflow_execution_started_event_attributes.header.fields
    env.run(go())


def test_workflow_retry_policy(env, wid):
    async def go():
        h = await env.client.start_workflow(
            InfoWorkflow.run, 3, id=wid, task_queue=TQ,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
        )
        first_run = h.result_run_id
        r = await h.result()  # follows the retry chain
        assert r["attempt"] == 3
        hist = await env.client.get_workflow_handle(wid, run_id=first_run).fetch_history()
        last = hist.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
        assert last.workflow_execution_failed_event_attributes.new_execution_run_id
        # Without a retry policy a workflow failure is final.
        h2 = await env.client.start_workflow(InfoWorkflow.run, 2, id=wid + "-noretry", task_queue=TQ)
        with pytest.raises(WorkflowFailureError) as ei:
            await h2.result()
        assert isinstance(ei.value.cause, ApplicationError)
        assert (await h2.describe()).status == WorkflowExecutionStatus.FAILED
    env.run(go())


def test_describe(env, wid):
    async def go():
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        d = await h.describe()
        assert d.id == wid and d.run_id == h.result_run_id
        assert d.workflow_type == "WaitSignalWorkflow"
        assert d.task_queue == TQ
        assert d.status == WorkflowExecutionStatus.RUNNING
        assert d.start_time is not None and d.close_time is None
        await h.signal(WaitSignalWorkflow.finish)
        await h.result()
        d = await h.describe()
        assert d.status == WorkflowExecutionStatus.COMPLETED
        assert d.close_time is not None and d.close_time >= d.start_time
        assert d.history_length == len((await h.fetch_history()).events)
    env.run(go())


def test_list_and_count_with_queries(env, wid):
    async def go():
        done = await env.client.start_workflow(HelloWorkflow.run, "list", id=wid + "-done", task_queue=TQ)
        await done.result()
        waiting = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid + "-wait", task_queue=TQ)
        prefix = f"WorkflowId STARTS_WITH '{wid}-'"
        # A list issued after the start returned sees the run: no waiting for visibility.
        running = [w.id async for w in env.client.list_workflows(f"{prefix} AND ExecutionStatus = 'Running'")]
        assert running == [wid + "-wait"], running
        rows = [w async for w in env.client.list_workflows(prefix, page_size=1)]
        assert [w.id for w in rows] == [wid + "-wait", wid + "-done"]
        assert rows[1].status == WorkflowExecutionStatus.COMPLETED and rows[1].close_time is not None
        assert rows[0].workflow_type == "WaitSignalWorkflow" and rows[0].task_queue == TQ
        by_type = [w.id async for w in env.client.list_workflows(f"{prefix} AND WorkflowType = 'HelloWorkflow'")]
        assert by_type == [wid + "-done"]
        count = await env.client.count_workflows(f"{prefix} GROUP BY ExecutionStatus")
        assert count.count == 2
        groups = sorted((g.group_values[0], g.count) for g in count.groups)
        assert groups == [("Completed", 1), ("Running", 1)], groups
        assert (await env.client.count_workflows(prefix)).count == 2
        try:
            [w async for w in env.client.list_workflows("NoSuchAttribute = 'x'")]
            raise AssertionError("an unknown attribute was accepted")
        except RPCError as error:
            assert error.status == RPCStatusCode.INVALID_ARGUMENT
            assert "invalid search attribute: NoSuchAttribute" in error.message
        await waiting.signal(WaitSignalWorkflow.finish)
        await waiting.result()
        closed = [w.id async for w in env.client.list_workflows(f"{prefix} AND CloseTime IS NOT NULL")]
        assert sorted(closed) == [wid + "-done", wid + "-wait"]
    env.run(go())


def test_custom_search_attributes_registered_typed_and_queried(env, wid):
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )
    from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

    order = SearchAttributeKey.for_keyword("PyOrderId")
    amount = SearchAttributeKey.for_float("PyAmount")
    tags = SearchAttributeKey.for_keyword_list("PyTags")
    unknown = SearchAttributeKey.for_keyword("PyNeverRegistered")

    async def go():
        ops = env.client.operator_service
        await ops.add_search_attributes(AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                "PyOrderId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
                "PyAmount": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
                "PyTags": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
            },
        ))
        listed = await ops.list_search_attributes(ListSearchAttributesRequest(namespace="default"))
        assert listed.custom_attributes["PyOrderId"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        assert listed.custom_attributes["PyTags"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST
        assert listed.system_attributes["WorkflowType"] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD

        typed = TypedSearchAttributes([
            SearchAttributePair(order, wid + "-order"),
            SearchAttributePair(amount, 12.5),
            SearchAttributePair(tags, ["red", "blue"]),
        ])
        # A newly added attribute may take a moment to reach every frontend (Temporal's registry).
        deadline = time.monotonic() + 15
        while True:
            try:
                h = await env.client.start_workflow(
                    WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ, search_attributes=typed)
                break
            except RPCError as error:
                if time.monotonic() > deadline or "no mapping" not in error.message:
                    raise
                await asyncio.sleep(0.2)

        # The typed view needs the type of each value, which the server supplies.
        d = await h.describe()
        assert d.typed_search_attributes.get(order) == wid + "-order"
        assert d.typed_search_attributes.get(amount) == 12.5
        assert d.typed_search_attributes.get(tags) == ["red", "blue"]

        query = f"PyOrderId = '{wid}-order' AND PyAmount > 10 AND PyTags = 'blue'"
        rows = []
        for _ in range(50):
            rows = [w async for w in env.client.list_workflows(query)]
            if rows:
                break
            await asyncio.sleep(0.1)
        assert [w.id for w in rows] == [wid]
        assert rows[0].typed_search_attributes.get(amount) == 12.5

        with pytest.raises(RPCError) as bad:
            await env.client.start_workflow(
                WaitSignalWorkflow.run, 0, id=wid + "-bad", task_queue=TQ,
                search_attributes=TypedSearchAttributes([SearchAttributePair(unknown, "x")]))
        assert bad.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert bad.value.message == (
            "Namespace default has no mapping defined for search attribute PyNeverRegistered")
        await h.signal(WaitSignalWorkflow.finish)
        await h.result()
    env.run(go())


def test_terminate(env, wid):
    async def go():
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        await h.terminate("det", reason="enough")
        with pytest.raises(WorkflowFailureError) as ei:
            await h.result()
        assert isinstance(ei.value.cause, TerminatedError)
        hist = await h.fetch_history()
        last = hist.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED
        assert last.workflow_execution_terminated_event_attributes.reason == "enough"
        # Terminating a closed run is NOT_FOUND; so is signalling it.
        with pytest.raises(RPCError) as ei2:
            await h.terminate(reason="again")
        assert ei2.value.status == RPCStatusCode.NOT_FOUND
        with pytest.raises(RPCError) as ei3:
            await h.signal(WaitSignalWorkflow.finish)
        assert ei3.value.status == RPCStatusCode.NOT_FOUND
    env.run(go())


def test_cancel(env, wid):
    async def go():
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid, task_queue=TQ)
        await h.cancel()
        with pytest.raises(WorkflowFailureError) as ei:
            await h.result()
        assert isinstance(ei.value.cause, CancelledError)
        types = await history_types(env.client, wid)
        assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in types
        assert types[-1] == "WORKFLOW_EXECUTION_CANCELED"
        await h.cancel()  # cancel on a closed run is an OK no-op
        assert (await h.describe()).status == WorkflowExecutionStatus.CANCELED
    env.run(go())


# ------------------------------------------------------------------ workflow tasks


def test_workflow_task_failure_retried(env, wid):
    async def go():
        h = await env.client.start_workflow(TaskFailOnceWorkflow.run, wid, id=wid, task_queue=TQ)
        assert await h.result() == "recovered"
        types = await history_types(env.client, wid)
        assert types[:5] == [
            "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_FAILED", "WORKFLOW_TASK_SCHEDULED",
        ]
        assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
        hist = await h.fetch_history()
        sched = [e for e in hist.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED]
        assert sched[-1].workflow_task_scheduled_event_attributes.attempt == 2
    env.run(go())


def test_worker_restart_sticky_fallback(env, wid):
    """A worker with a sticky cache goes away (ShutdownWorker); a new worker continues the run."""
    tq = "py-sticky-" + uuid.uuid4().hex[:6]

    async def go():
        def mk():
            return Worker(env.client, task_queue=tq, workflows=[WaitSignalWorkflow],
                          workflow_runner=UnsandboxedWorkflowRunner())
        w1 = mk()
        async with w1:
            h = await env.client.start_workflow(WaitSignalWorkflow.run, 2, id=wid, task_queue=tq)
            await h.signal(WaitSignalWorkflow.add, "one")
            for _ in range(50):
                if await h.query(WaitSignalWorkflow.get_items) == ["one"]:
                    break
                await asyncio.sleep(0.1)
        t0 = time.monotonic()
        async with mk():
            await h.signal(WaitSignalWorkflow.add, "two")
            assert await asyncio.wait_for(h.result(), 30) == ["one", "two"]
        assert time.monotonic() - t0 < 25
    env.run(go())


# ------------------------------------------------------------------ activities


def _act(env, wid, scenario):
    async def go():
        t0 = time.monotonic()
        r = await env.client.execute_workflow(ActivityScenarioWorkflow.run, args=[scenario, wid], id=wid, task_queue=TQ)
        return r, time.monotonic() - t0, await env.client.get_workflow_handle(wid).fetch_history()
    return env.run(go())


def _events(hist, et):
    return [e for e in hist.events if e.event_type == et]


def test_activity_retry_backoff(env, wid):
    r, elapsed, hist = _act(env, wid, "retry")
    assert r == {"ok": "ok at attempt 3"}
    assert elapsed >= 0.3 + 0.6 - 0.05  # backoff 300 ms then 600 ms
    started = _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert len(started) == 1 and started[0].activity_task_started_event_attributes.attempt == 3
    assert started[0].activity_task_started_event_attributes.last_failure.message == "attempt 2 fails"
    assert not _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)


def test_activity_max_attempts(env, wid):
    r, _, hist = _act(env, wid, "max_attempts")
    assert r["error"] == "ActivityError" and r["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    assert r["type"] == "Boom" and "attempt 3" in r["message"]
    f = _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
    assert len(f) == 1
    s = _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert s[0].activity_task_started_event_attributes.attempt == 3


def test_activity_non_retryable(env, wid):
    r, _, hist = _act(env, wid, "non_retryable")
    assert r["retry_state"] == "NON_RETRYABLE_FAILURE" and r["type"] == "Fatal"
    s = _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert s[0].activity_task_started_event_attributes.attempt == 1


def test_activity_schedule_to_close_timeout(env, wid):
    r, elapsed, hist = _act(env, wid, "schedule_to_close")
    assert r["cause"] == "TimeoutError" and r["timeout_type"] == "SCHEDULE_TO_CLOSE", r
    assert elapsed < 8
    assert _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)


def test_activity_start_to_close_timeout(env, wid):
    r, elapsed, hist = _act(env, wid, "start_to_close")
    assert r["cause"] == "TimeoutError" and r["timeout_type"] == "START_TO_CLOSE", r
    assert r["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    assert elapsed < 8


def test_activity_schedule_to_start_timeout(env, wid):
    r, elapsed, hist = _act(env, wid, "schedule_to_start")
    assert r["cause"] == "TimeoutError" and r["timeout_type"] == "SCHEDULE_TO_START", r
    assert r["retry_state"] == "TIMEOUT"
    assert not _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)


def test_activity_heartbeat_timeout_and_details(env, wid):
    r, elapsed, hist = _act(env, wid, "heartbeat_timeout")
    assert r["cause"] == "TimeoutError" and r["timeout_type"] == "HEARTBEAT", r
    assert r["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    # attempt 2 saw attempt 1's heartbeat details and heartbeated them along with its own
    assert r["last_heartbeat_details"] == ["hb-from-attempt-2", ["hb-from-attempt-1", []]], r
    s = _events(hist, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    assert s[0].activity_task_started_event_attributes.attempt == 2


def test_activity_cancel_via_heartbeat(env, wid):
    r, elapsed, hist = _act(env, wid, "cancel")
    assert r["cause"] == "CancelledError", r
    types = etypes(hist)
    i = types.index("ACTIVITY_TASK_CANCEL_REQUESTED")
    assert "ACTIVITY_TASK_CANCELED" in types[i:]
    assert "ACTIVITY_TASK_STARTED" in types[i:]
    assert elapsed < 15


# ------------------------------------------------------------------ timers, signals, queries


def test_timer_fires(env, wid):
    async def go():
        t0 = time.monotonic()
        assert await env.client.execute_workflow(SleepWorkflow.run, 1.0, id=wid, task_queue=TQ) == "woke"
        assert time.monotonic() - t0 >= 0.95
        types = await history_types(env.client, wid)
        assert types[4:6] == ["TIMER_STARTED", "TIMER_FIRED"]
    env.run(go())


def test_timer_cancel_and_signal(env, wid):
    async def go():
        h = await env.client.start_workflow(TimerCancelWorkflow.run, id=wid, task_queue=TQ)
        await asyncio.sleep(0.5)
        await h.signal(TimerCancelWorkflow.proceed)
        assert await h.result() == "signalled before timer"
        types = await history_types(env.client, wid)
        assert "TIMER_STARTED" in types and "TIMER_CANCELED" in types and "TIMER_FIRED" not in types
        assert "WORKFLOW_EXECUTION_SIGNALED" in types
    env.run(go())


def test_signals_in_order(env, wid):
    async def go():
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 3, id=wid, task_queue=TQ)
        for x in ("a", "b", "c"):
            await h.signal(WaitSignalWorkflow.add, x)
        assert await h.result() == ["a", "b", "c"]
        hist = await h.fetch_history()
        sig = _events(hist, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        assert [s.workflow_execution_signaled_event_attributes.signal_name for s in sig] == ["add"] * 3
    env.run(go())


def test_signal_with_start(env, wid):
    async def go():
        h = await env.client.start_workflow(
            WaitSignalWorkflow.run, 2, id=wid, task_queue=TQ, start_signal="add", start_signal_args=["first"]
        )
        h2 = await env.client.start_workflow(
            WaitSignalWorkflow.run, 2, id=wid, task_queue=TQ, start_signal="add", start_signal_args=["second"]
        )
        assert h2.result_run_id == h.result_run_id  # the second call only signalled
        assert await h.result() == ["first", "second"]
        types = await history_types(env.client, wid)
        assert types[:3] == ["WORKFLOW_EXECUTION_STARTED", "WORKFLOW_EXECUTION_SIGNALED", "WORKFLOW_TASK_SCHEDULED"]
    env.run(go())


def test_queries(env, wid):
    async def go():
        from temporalio.client import WorkflowQueryFailedError
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 2, id=wid, task_queue=TQ)
        assert await h.query(WaitSignalWorkflow.get_items) == []
        await h.signal(WaitSignalWorkflow.add, "x")
        for _ in range(50):
            if await h.query(WaitSignalWorkflow.get_items) == ["x"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("query never saw the signal")
        with pytest.raises(WorkflowQueryFailedError) as ei:
            await h.query(WaitSignalWorkflow.fail_query)
        assert "query refused" in str(ei.value)
        n_before = len((await h.fetch_history()).events)
        await h.signal(WaitSignalWorkflow.add, "y")
        assert await h.result() == ["x", "y"]
        # Query after close goes to the worker with the full history.
        assert await h.query(WaitSignalWorkflow.get_items) == ["x", "y"]
        assert n_before > 0
    env.run(go())


def test_signal_external(env, wid):
    async def go():
        target = await env.client.start_workflow(WaitSignalWorkflow.run, 1, id=wid + "-target", task_queue=TQ)
        r = await env.client.execute_workflow(ExternalWorkflow.run, args=["signal", wid + "-target"], id=wid, task_queue=TQ)
        assert r == "sent"
        assert await target.result() == ["from-external"]
        types = await history_types(env.client, wid)
        assert "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in types
        assert "EXTERNAL_WORKFLOW_EXECUTION_SIGNALED" in types
        # Unknown target: the initiated command fails.
        r2 = await env.client.execute_workflow(ExternalWorkflow.run, args=["signal", wid + "-missing"], id=wid + "-2", task_queue=TQ)
        assert r2.startswith("failed"), r2
        assert "SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED" in await history_types(env.client, wid + "-2")
    env.run(go())


def test_cancel_external(env, wid):
    async def go():
        target = await env.client.start_workflow(WaitSignalWorkflow.run, 0, id=wid + "-target", task_queue=TQ)
        r = await env.client.execute_workflow(ExternalWorkflow.run, args=["cancel", wid + "-target"], id=wid, task_queue=TQ)
        assert r == "sent"
        with pytest.raises(WorkflowFailureError) as ei:
            await target.result()
        assert isinstance(ei.value.cause, CancelledError)
        types = await history_types(env.client, wid)
        assert "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in types
        assert "EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED" in types
        ttypes = await history_types(env.client, wid + "-target")
        assert "WORKFLOW_EXECUTION_CANCEL_REQUESTED" in ttypes
    env.run(go())


# ------------------------------------------------------------------ children


def test_child_complete(env, wid):
    async def go():
        r = await env.client.execute_workflow(ParentWorkflow.run, "complete", id=wid, task_queue=TQ)
        assert r == {"ok": "child done"}
        types = await history_types(env.client, wid)
        for t in ("START_CHILD_WORKFLOW_EXECUTION_INITIATED", "CHILD_WORKFLOW_EXECUTION_STARTED",
                  "CHILD_WORKFLOW_EXECUTION_COMPLETED"):
            assert t in types
        ch = await env.client.get_workflow_handle(wid + "-child").fetch_history()
        pe = ch.events[0].workflow_execution_started_event_attributes.parent_workflow_execution
        assert pe.workflow_id == wid
    env.run(go())


def test_child_fail(env, wid):
    async def go():
        r = await env.client.execute_workflow(ParentWorkflow.run, "fail", id=wid, task_queue=TQ)
        assert r["error"] == "ChildWorkflowError" and r["cause"] == "ApplicationError"
        assert r["type"] == "ChildBoom"
        assert "CHILD_WORKFLOW_EXECUTION_FAILED" in await history_types(env.client, wid)
    env.run(go())


def test_child_retried_after_run_timeout(env, wid):
    """A child whose runs time out is retried by its retry policy (Temporal does so: the Go SDK's
    ChildWorkflowRetryOnTimeout test); the parent sees the timeout only after the last attempt."""
    async def go():
        r = await env.client.execute_workflow(ParentWorkflow.run, "retry_timeout", id=wid, task_queue=TQ)
        assert r["error"] == "ChildWorkflowError" and r["cause"] == "TimeoutError", r
        assert r["retry_state"] == "TIMEOUT" or r["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED", r
        # The last run is the third attempt; each run was continued from the one before.
        last = await env.client.get_workflow_handle(wid + "-child").fetch_history()
        started = last.events[0].workflow_execution_started_event_attributes
        assert started.attempt == 3, started
        attempts = [started.attempt]
        previous = started.continued_execution_run_id
        while previous and len(attempts) < 5:
            h = await env.client.get_workflow_handle(wid + "-child", run_id=previous).fetch_history()
            assert h.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT
            s = h.events[0].workflow_execution_started_event_attributes
            attempts.append(s.attempt)
            previous = s.continued_execution_run_id
        assert attempts == [3, 2, 1]
        types = await history_types(env.client, wid)
        assert types.count("CHILD_WORKFLOW_EXECUTION_TIMED_OUT") == 1
    env.run(go(), timeout=60)


def test_query_reports_seeded_random_values(env, wid):
    """Queries of a workflow that drew seeded random values are answered, by the cached worker
    and after the run closed (a replay), with the values the run drew."""
    async def go():
        h = await env.client.start_workflow(RandomWorkflow.run, id=wid, task_queue=TQ)
        first = None
        for _ in range(50):
            first = await h.query(RandomWorkflow.drawn)
            if first:
                break
            await asyncio.sleep(0.1)
        assert len(first) == 3
        assert await h.query(RandomWorkflow.drawn) == first
        await h.signal(RandomWorkflow.release)
        result = await h.result()
        assert result[:3] == first and len(result) == 4
        assert await h.query(RandomWorkflow.drawn) == result
    env.run(go())


def _short_task_timeout_run(env, wid, scenario):
    """Runs ShortTaskTimeoutWorkflow with a 1 s workflow task timeout, querying it every 0.3 s
    while it runs; returns its result, the query answers and its history's event types."""
    async def go():
        h = await env.client.start_workflow(
            ShortTaskTimeoutWorkflow.run, scenario, id=wid, task_queue=TQ,
            task_timeout=timedelta(seconds=1),
        )
        answers = []
        result_task = asyncio.ensure_future(h.result())
        for _ in range(40):
            if result_task.done():
                break
            answers.append(await h.query(ShortTaskTimeoutWorkflow.current_stage))
            await asyncio.sleep(0.3)
        result = await asyncio.wait_for(result_task, 30)
        return result, answers, await history_types(env.client, wid)
    return env.run(go(), timeout=60)


def test_local_activity_longer_than_task_timeout(env, wid):
    """The worker heartbeats the workflow task while its local activity runs (completions with
    force_create_new_workflow_task that ask for the next task back); the run must not time out."""
    result, answers, types = _short_task_timeout_run(env, wid, "long_local")
    assert result == {"ok": "slept"}
    assert "local activity" in answers
    assert "WORKFLOW_TASK_TIMED_OUT" not in types and "WORKFLOW_TASK_FAILED" not in types
    assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"


def test_retried_local_activity_under_short_task_timeout(env, wid):
    result, _, types = _short_task_timeout_run(env, wid, "retried_local")
    assert result == {"ok": "ok at attempt 3"}
    assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"


@pytest.mark.parametrize("scenario", [
    "remote:try", "remote:wait", "remote:abandon", "local:try", "local:wait", "local:abandon",
])
def test_activity_cancellation_types_under_short_task_timeout(env, wid, scenario):
    """Each cancellation type ends the activity as Temporal ends it (CancelledError for the
    workflow), and queries are answered while the cancellation is under way."""
    result, answers, types = _short_task_timeout_run(env, wid, scenario)
    assert result == {"error": "CancelledError"}, result
    assert "activity running" in answers, answers
    assert types[-1] == "WORKFLOW_EXECUTION_COMPLETED"
    if scenario == "remote:abandon":
        # Abandoned: the server is never told.
        assert "ACTIVITY_TASK_CANCEL_REQUESTED" not in types
    elif scenario.startswith("remote"):
        assert "ACTIVITY_TASK_CANCEL_REQUESTED" in types
        if scenario == "remote:wait":
            assert "ACTIVITY_TASK_CANCELED" in types
    assert "WORKFLOW_TASK_TIMED_OUT" not in types


def test_child_cancel(env, wid):
    async def go():
        r = await env.client.execute_workflow(ParentWorkflow.run, "cancel", id=wid, task_queue=TQ)
        assert r["error"] == "ChildWorkflowError" and r["cause"] == "CancelledError", r
        types = await history_types(env.client, wid)
        assert "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED" in types
        assert "CHILD_WORKFLOW_EXECUTION_CANCELED" in types
        d = await env.client.get_workflow_handle(wid + "-child").describe()
        assert d.status == WorkflowExecutionStatus.CANCELED
    env.run(go())


def test_child_terminate(env, wid):
    async def go():
        h = await env.client.start_workflow(ParentWorkflow.run, "terminate", id=wid, task_queue=TQ)
        child = env.client.get_workflow_handle(wid + "-child")
        for _ in range(100):
            try:
                await child.describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)
        await child.terminate(reason="from test")
        r = await h.result()
        assert r["error"] == "ChildWorkflowError" and r["cause"] == "TerminatedError", r
        assert "CHILD_WORKFLOW_EXECUTION_TERMINATED" in await history_types(env.client, wid)
    env.run(go())


def test_parent_close_policy(env, wid):
    async def go():
        h = await env.client.start_workflow(ParentWorkflow.run, "close_policy", id=wid, task_queue=TQ)
        for _ in range(100):
            if (await history_types(env.client, wid)).count("CHILD_WORKFLOW_EXECUTION_STARTED") == 3:
                break
            await asyncio.sleep(0.1)
        await h.signal(ParentWorkflow.go)
        assert await h.result() == {"ok": "parent closing"}
        term = env.client.get_workflow_handle(wid + "-TERMINATE")
        aband = env.client.get_workflow_handle(wid + "-ABANDON")
        canc = env.client.get_workflow_handle(wid + "-REQUEST_CANCEL")
        await wait_status(term, WorkflowExecutionStatus.TERMINATED)
        await wait_status(canc, WorkflowExecutionStatus.CANCELED)
        await asyncio.sleep(0.5)
        assert (await aband.describe()).status == WorkflowExecutionStatus.RUNNING
        await aband.signal(ChildWorkflow.release)
        assert await aband.result() == "child released"
    env.run(go())


# ------------------------------------------------------------------ continue-as-new, markers, upserts


def test_continue_as_new(env, wid):
    async def go():
        h = await env.client.start_workflow(ContinueAsNewWorkflow.run, args=[3, []], id=wid, task_queue=TQ)
        first = h.result_run_id
        assert await h.result() == [3, 2, 1, 0]  # result() follows the chain
        hist = await env.client.get_workflow_handle(wid, run_id=first).fetch_history()
        last = hist.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        nxt = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        h2 = await env.client.get_workflow_handle(wid, run_id=nxt).fetch_history()
        a = h2.events[0].workflow_execution_started_event_attributes
        assert a.continued_execution_run_id == first
        assert a.first_execution_run_id == first
        d = await env.client.get_workflow_handle(wid).describe()
        assert d.status == WorkflowExecutionStatus.COMPLETED and d.run_id != first
        assert (await env.client.get_workflow_handle(wid, run_id=first).describe()).status == \
            WorkflowExecutionStatus.CONTINUED_AS_NEW
    env.run(go())


def test_local_activity_and_patch_markers(env, wid):
    async def go():
        r = await env.client.execute_workflow(MarkersWorkflow.run, "LA", id=wid, task_queue=TQ)
        assert r == "Hello, LA! (patched)"
        hist = await env.client.get_workflow_handle(wid).fetch_history()
        markers = [e.marker_recorded_event_attributes.marker_name
                   for e in _events(hist, EventType.EVENT_TYPE_MARKER_RECORDED)]
        assert len(markers) == 2, markers
        assert "core_local_activity" in markers and "core_patch" in markers
        assert "ACTIVITY_TASK_SCHEDULED" not in etypes(hist)
    env.run(go())


def test_upsert_search_attributes_and_memo(env, wid):
    async def go():
        h = await env.client.start_workflow(UpsertWorkflow.run, id=wid, task_queue=TQ, memo={"orig": 1})
        assert await h.result() == "upserted"
        hist = await h.fetch_history()
        ups = _events(hist, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        assert len(ups) == 1
        f = ups[0].upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        assert "CustomKeywordField" in f
        mod = _events(hist, EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED)
        assert len(mod) == 1
        assert set(mod[0].workflow_properties_modified_event_attributes.upserted_memo.fields) == {"note", "n"}
        d = await h.describe()
        assert await d.memo() == {"orig": 1, "note": "memo-upserted", "n": 7}
    env.run(go())


# ------------------------------------------------------------------ history


def test_history_paging(env, wid):
    async def go():
        h = await env.client.start_workflow(ManySignalsWorkflow.run, 150, id=wid, task_queue=TQ)
        for i in range(150):
            await h.signal(ManySignalsWorkflow.tick, i)
        assert await h.result() == 150
        svc = env.client.workflow_service
        full = await h.fetch_history()
        ids, token, pages = [], b"", 0
        while True:
            resp = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=wid),
                maximum_page_size=25, next_page_token=token))
            pages += 1
            ids += [e.event_id for e in resp.history.events]
            token = resp.next_page_token
            if not token:
                break
            assert pages < 100
        assert pages >= 2
        assert ids == [e.event_id for e in full.events]
        assert ids == list(range(1, len(ids) + 1))
        assert len(ids) > 150
    env.run(go())


def test_history_long_poll_and_close_filter(env, wid):
    async def go():
        svc = env.client.workflow_service
        h = await env.client.start_workflow(WaitSignalWorkflow.run, 1, id=wid, task_queue=TQ)
        ex = WorkflowExecution(workflow_id=wid, run_id=h.result_run_id)
        # read everything there is now
        token = b""
        while True:
            r = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace="default", execution=ex, next_page_token=token))
            last_id = r.history.events[-1].event_id if r.history.events else last_id
            token = r.next_page_token
            if not token or not r.history.events:
                break
        r = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=ex))
        last_id = r.history.events[-1].event_id
        tok = r.next_page_token
        # A long poll for a new event returns once the signal is persisted.
        async def later():
            await asyncio.sleep(1.0)
            await h.signal(WaitSignalWorkflow.add, "late")
        sig_task = asyncio.ensure_future(later())
        t0 = time.monotonic()
        got = []
        while not got and time.monotonic() - t0 < 25:
            r = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace="default", execution=ex, wait_new_event=True, next_page_token=tok),
                timeout=timedelta(seconds=30))
            got = [e for e in r.history.events if e.event_id > last_id]
            tok = r.next_page_token or tok
        await sig_task
        assert got and got[0].event_id == last_id + 1
        assert time.monotonic() - t0 >= 0.9
        # CLOSE_EVENT filter waits for the close and returns only the close event.
        r = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace="default", execution=ex, wait_new_event=True,
            history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT),
            timeout=timedelta(seconds=30))
        assert [e.event_type for e in r.history.events] == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
        assert not r.next_page_token
    env.run(go())


def test_task_poll_returns_empty_before_deadline(env):
    async def go():
        svc = env.client.workflow_service
        t0 = time.monotonic()
        r = await svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name="empty-" + uuid.uuid4().hex[:6]), identity="e2e"),
            timeout=timedelta(seconds=5))
        el = time.monotonic() - t0
        assert r.task_token == b""
        assert 2.0 <= el < 5.5, el
    env.run(go())


# ------------------------------------------------------------------ namespaces, system


def test_other_namespace_runs_workflows(env, server):
    from conftest import EXTRA_NAMESPACE

    async def go():
        c = await Client.connect(server.address, namespace=EXTRA_NAMESPACE)
        tq = "py-ns-" + uuid.uuid4().hex[:6]
        async with Worker(c, task_queue=tq, workflows=[HelloWorkflow], activities=[wf_defs.say_hello],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            assert await c.execute_workflow(HelloWorkflow.run, "ns", id="ns-" + tq, task_queue=tq) == "Hello, ns!"
        # the run is invisible from the default namespace
        with pytest.raises(RPCError) as ei:
            await env.client.get_workflow_handle("ns-" + tq).describe()
        assert ei.value.status == RPCStatusCode.NOT_FOUND
    env.run(go())


def test_namespaces_register_describe_list_update(env):
    name = "py-ns-" + uuid.uuid4().hex[:8]

    async def go():
        svc = env.client.workflow_service
        await svc.register_namespace(RegisterNamespaceRequest(
            namespace=name, description="made by e2e", workflow_execution_retention_period=Duration(seconds=86400)))
        with pytest.raises(RPCError) as ei:
            await svc.register_namespace(RegisterNamespaceRequest(
                namespace=name, workflow_execution_retention_period=Duration(seconds=86400)))
        assert ei.value.status == RPCStatusCode.ALREADY_EXISTS
        d = await svc.describe_namespace(DescribeNamespaceRequest(namespace=name))
        assert d.namespace_info.name == name and d.namespace_info.id
        assert d.namespace_info.description == "made by e2e"
        assert d.config.workflow_execution_retention_ttl.seconds == 86400
        assert d.namespace_info.HasField("capabilities")
        dd = await svc.describe_namespace(DescribeNamespaceRequest(namespace="default"))
        assert dd.namespace_info.HasField("capabilities")
        names, tok = [], b""
        while True:
            lr = await svc.list_namespaces(ListNamespacesRequest(page_size=100, next_page_token=tok))
            names += [n.namespace_info.name for n in lr.namespaces]
            tok = lr.next_page_token
            if not tok:
                break
        assert name in names and "default" in names
        await svc.update_namespace(UpdateNamespaceRequest(
            namespace=name, update_info=UpdateNamespaceInfo(description="updated")))
        d = await svc.describe_namespace(DescribeNamespaceRequest(namespace=name))
        assert d.namespace_info.description == "updated"
        with pytest.raises(RPCError) as ei:
            await svc.describe_namespace(DescribeNamespaceRequest(namespace="no-such-ns-" + name))
        assert ei.value.status == RPCStatusCode.NOT_FOUND
    env.run(go())


def test_system_info_and_health(env):
    async def go():
        si = await env.client.workflow_service.get_system_info(GetSystemInfoRequest())
        assert si.HasField("capabilities")
        assert await env.client.service_client.check_health() is True
    env.run(go())


@pytest.mark.skipif(not os.environ.get("SUNDIAL_SLOW_TESTS"), reason="slow (~60 s): set SUNDIAL_SLOW_TESTS=1")
def test_task_poll_with_sdk_deadline_returns_empty_before_70s(env):
    """With the SDK's 70 s poll deadline the server must answer OK/empty before the deadline."""
    async def go():
        svc = env.client.workflow_service
        t0 = time.monotonic()
        r = await svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name="idle-" + uuid.uuid4().hex[:6]), identity="e2e"),
            timeout=timedelta(seconds=70))
        assert r.task_token == b""
        assert time.monotonic() - t0 < 69
    env.run(go(), timeout=100)


def test_workflow_updates(env, wid):
    """Updates through the SDK: results, a validator's rejection that leaves history as it was,
    a failing handler, start_update + result, update-id dedupe, and an update on a closed run."""
    from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
    from temporalio.service import RPCError, RPCStatusCode

    async def go():
        h = await env.client.start_workflow(
            wf_defs.UpdateWorkflow.run, id=wid, task_queue=env.task_queue
        )
        assert await h.execute_update(wf_defs.UpdateWorkflow.add, "a") == 1
        assert await h.execute_update(wf_defs.UpdateWorkflow.add, "b", id="upd-b") == 2
        before = await history_types(env.client, wid)
        with pytest.raises(WorkflowUpdateFailedError) as rejected:
            await h.execute_update(wf_defs.UpdateWorkflow.add, "bad")
        assert "no bad items" in str(rejected.value.cause)
        assert await history_types(env.client, wid) == before, "a rejection leaves no trace"
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await h.execute_update(wf_defs.UpdateWorkflow.boom)
        assert failed.value.cause.type == "Boom"
        started = await h.start_update(
            wf_defs.UpdateWorkflow.add_later, "c", wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        assert await started.result() == 3
        # The same update id again returns the stored outcome without running the handler.
        assert await h.execute_update(wf_defs.UpdateWorkflow.add, "b", id="upd-b") == 2
        assert await h.execute_update(wf_defs.UpdateWorkflow.finish) == "finished"
        assert await h.result() == ["a", "b", "c"]
        types = await history_types(env.client, wid)
        assert types.count("WORKFLOW_EXECUTION_UPDATE_ACCEPTED") == 5
        assert types.count("WORKFLOW_EXECUTION_UPDATE_COMPLETED") == 5
        # The stored outcome is still there after the run closed; a new update is refused.
        assert await h.execute_update(wf_defs.UpdateWorkflow.add, "b", id="upd-b") == 2
        with pytest.raises(RPCError) as closed:
            await h.execute_update(wf_defs.UpdateWorkflow.add, "z")
        assert closed.value.status == RPCStatusCode.NOT_FOUND
        assert "workflow execution already completed" in closed.value.message

    env.run(go())


def test_update_with_start(env, wid):
    """Update-with-start: a new run started with the update in its first task, the same call on
    the running run (USE_EXISTING) updating it without a new run, a FAIL-policy conflict
    unpacked from the multi-operation error, a rejected update after the start succeeded, and
    the stored outcome of a known update id."""
    from temporalio.client import (
        WithStartWorkflowOperation,
        WorkflowUpdateFailedError,
    )
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    def operation(policy):
        return WithStartWorkflowOperation(
            wf_defs.UpdateWorkflow.run,
            id=wid,
            task_queue=env.task_queue,
            id_conflict_policy=policy,
        )

    async def go():
        first = operation(WorkflowIDConflictPolicy.USE_EXISTING)
        result = await env.client.execute_update_with_start_workflow(
            wf_defs.UpdateWorkflow.add, "a", start_workflow_operation=first, id="uws-a"
        )
        assert result == 1
        handle = await first.workflow_handle()
        run_id = handle.result_run_id
        types = await history_types(env.client, wid)
        assert types[:6] == [
            "WORKFLOW_EXECUTION_STARTED",
            "WORKFLOW_TASK_SCHEDULED",
            "WORKFLOW_TASK_STARTED",
            "WORKFLOW_TASK_COMPLETED",
            "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
            "WORKFLOW_EXECUTION_UPDATE_COMPLETED",
        ], "the update rode on the first workflow task"

        second = operation(WorkflowIDConflictPolicy.USE_EXISTING)
        result = await env.client.execute_update_with_start_workflow(
            wf_defs.UpdateWorkflow.add, "b", start_workflow_operation=second
        )
        assert result == 2
        assert (await second.workflow_handle()).result_run_id == run_id, "no new run"

        # The same update id again returns its outcome, whatever the policy.
        again = operation(WorkflowIDConflictPolicy.FAIL)
        assert (
            await env.client.execute_update_with_start_workflow(
                wf_defs.UpdateWorkflow.add, "a", start_workflow_operation=again, id="uws-a"
            )
            == 1
        )

        conflict = operation(WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowAlreadyStartedError):
            await env.client.execute_update_with_start_workflow(
                wf_defs.UpdateWorkflow.add, "c", start_workflow_operation=conflict
            )

        rejected = operation(WorkflowIDConflictPolicy.USE_EXISTING)
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await env.client.execute_update_with_start_workflow(
                wf_defs.UpdateWorkflow.add, "bad", start_workflow_operation=rejected
            )
        assert "no bad items" in str(failed.value.cause)

        await handle.execute_update(wf_defs.UpdateWorkflow.finish)
        assert await handle.result() == ["a", "b"]

    env.run(go())
