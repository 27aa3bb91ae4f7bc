"""Workflows and activities used by the Python SDK end-to-end suite (run unsandboxed)."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Optional

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TimeoutError as TTimeoutError,
)
from temporalio.workflow import ParentClosePolicy

KW_KEY = SearchAttributeKey.for_keyword("CustomKeywordField")

# ---------------------------------------------------------------- activities

_flaky_calls: dict[str, int] = {}


@activity.defn
async def say_hello(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def flaky(key: str, fail_times: int) -> str:
    info = activity.info()
    _flaky_calls[key] = _flaky_calls.get(key, 0) + 1
    if info.attempt <= fail_times:
        raise ApplicationError(f"attempt {info.attempt} fails", type="FlakyError")
    return f"ok at attempt {info.attempt}"


@activity.defn
async def always_fail(err_type: str) -> str:
    raise ApplicationError(f"failing with {err_type} at attempt {activity.info().attempt}", type=err_type)


@activity.defn
async def sleepy(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


@activity.defn
async def heartbeat_then_stall(_: str) -> str:
    info = activity.info()
    prev = list(info.heartbeat_details)
    activity.heartbeat(f"hb-from-attempt-{info.attempt}", prev)
    await asyncio.sleep(30)  # stop heartbeating: the heartbeat timeout fires
    return "unreachable"


@activity.defn
async def heartbeat_until_cancelled(_: str) -> str:
    try:
        for i in range(300):
            activity.heartbeat(i)
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        raise
    return "never cancelled"


@activity.defn
async def heartbeat_ignoring_cancel(seconds: float) -> str:
    """Heartbeats for `seconds`; on cancellation it finishes cleaning up for a moment first."""
    try:
        for i in range(int(seconds * 10)):
            activity.heartbeat(i)
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        await asyncio.sleep(0.5)
        raise
    return "finished"


# ---------------------------------------------------------------- workflows


@workflow.defn
class RandomWorkflow:
    """Draws seeded random values, reports them by query, and returns them when released."""

    def __init__(self) -> None:
        self.values: list[int] = []
        self.released = False

    @workflow.run
    async def run(self) -> list[int]:
        self.values = [workflow.random().randint(0, 1_000_000) for _ in range(3)]
        await workflow.wait_condition(lambda: self.released)
        self.values.append(workflow.random().randint(0, 1_000_000))
        return self.values

    @workflow.query
    def drawn(self) -> list[int]:
        return self.values

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn
class ShortTaskTimeoutWorkflow:
    """Run with a 1 s workflow task timeout: a local activity that outlives it (the worker
    heartbeats the workflow task), a retried local activity, and remote and local activities
    cancelled under each cancellation type, with queries answered throughout."""

    def __init__(self) -> None:
        self.stage = "starting"

    @workflow.run
    async def run(self, scenario: str) -> dict:
        if scenario == "long_local":
            self.stage = "local activity"
            r = await workflow.execute_local_activity(sleepy, 3.0, start_to_close_timeout=timedelta(seconds=10))
            self.stage = "done"
            return {"ok": r}
        if scenario == "retried_local":
            key = workflow.info().workflow_id
            r = await workflow.execute_local_activity(
                flaky, args=[key, 2], start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=1.0),
            )
            return {"ok": r}
        kind, cancellation = scenario.split(":")
        cancel_type = {
            "try": workflow.ActivityCancellationType.TRY_CANCEL,
            "wait": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "abandon": workflow.ActivityCancellationType.ABANDON,
        }[cancellation]
        if kind == "remote":
            h = workflow.start_activity(
                heartbeat_ignoring_cancel, 20.0, start_to_close_timeout=timedelta(seconds=30),
                heartbeat_timeout=timedelta(seconds=2), cancellation_type=cancel_type,
            )
        else:
            h = workflow.start_local_activity(
                heartbeat_ignoring_cancel, 20.0, start_to_close_timeout=timedelta(seconds=30),
                cancellation_type=cancel_type,
            )
        self.stage = "activity running"
        await workflow.sleep(1.5)
        h.cancel()
        self.stage = "cancel requested"
        try:
            await h
            return {"ok": "not cancelled"}
        except ActivityError as e:
            return {"error": type(e.cause).__name__}

    @workflow.query
    def current_stage(self) -> str:
        return self.stage


@workflow.defn
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            say_hello, name, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class WaitSignalWorkflow:
    """Waits for `finish` signals; collects `add` signals; answers queries."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, expected: int) -> list[str]:
        if expected > 0:
            await workflow.wait_condition(lambda: len(self.items) >= expected)
        else:
            await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def get_items(self) -> list[str]:
        return self.items

    @workflow.query
    def fail_query(self) -> str:
        raise ApplicationError("query refused")


@workflow.defn
class SleepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "woke"


@workflow.defn
class TimerCancelWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.wait_condition(lambda: self.go, timeout=timedelta(seconds=60))
            return "signalled before timer"
        except asyncio.TimeoutError:
            return "timer fired"

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


@workflow.defn
class InfoWorkflow:
    """Returns facts the workflow sees about itself (attempt, headers, memo, timeouts)."""

    @workflow.run
    async def run(self, fail_until_attempt: int) -> dict:
        info = workflow.info()
        if info.attempt < fail_until_attempt:
            raise ApplicationError(f"fail on attempt {info.attempt}")
        hdr = info.headers.get("x-sundial-test")
        return {
            "attempt": info.attempt,
            "header": workflow.payload_converter().from_payload(hdr, str) if hdr else None,
            "memo": workflow.memo_value("k", default=None),
            "run_timeout": info.run_timeout.total_seconds() if info.run_timeout else None,
            "execution_timeout": info.execution_timeout.total_seconds() if info.execution_timeout else None,
        }


_task_failures: dict[str, int] = {}


@workflow.defn
class TaskFailOnceWorkflow:
    @workflow.run
    async def run(self, key: str) -> str:
        n = _task_failures.get(key, 0)
        if n < 1:
            _task_failures[key] = n + 1
            # A plain exception (not ApplicationError) fails the workflow *task*, which the server retries.
            raise RuntimeError("deliberate workflow task failure")
        return "recovered"


@workflow.defn
class ActivityScenarioWorkflow:
    """Runs one activity scenario and reports the outcome as a dict (errors are caught)."""

    @workflow.run
    async def run(self, scenario: str, key: str) -> dict:
        try:
            if scenario == "retry":
                r = await workflow.execute_activity(
                    flaky, args=[key, 2], start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=300), backoff_coefficient=2.0),
                )
            elif scenario == "max_attempts":
                r = await workflow.execute_activity(
                    always_fail, "Boom", start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3),
                )
            elif scenario == "non_retryable":
                r = await workflow.execute_activity(
                    always_fail, "Fatal", start_to_close_timeout=timedelta(seconds=5),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), non_retryable_error_types=["Fatal"]),
                )
            elif scenario == "schedule_to_close":
                r = await workflow.execute_activity(
                    sleepy, 10.0, schedule_to_close_timeout=timedelta(seconds=1),
                )
            elif scenario == "start_to_close":
                r = await workflow.execute_activity(
                    sleepy, 10.0, start_to_close_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
            elif scenario == "schedule_to_start":
                r = await workflow.execute_activity(
                    sleepy, 0.1, task_queue="no-worker-" + key,
                    schedule_to_start_timeout=timedelta(seconds=1), start_to_close_timeout=timedelta(seconds=5),
                )
            elif scenario == "heartbeat_timeout":
                r = await workflow.execute_activity(
                    heartbeat_then_stall, key, start_to_close_timeout=timedelta(seconds=20),
                    heartbeat_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=2),
                )
            elif scenario == "cancel":
                h = workflow.start_activity(
                    heartbeat_until_cancelled, key, start_to_close_timeout=timedelta(seconds=60),
                    heartbeat_timeout=timedelta(seconds=5),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                await workflow.sleep(1)
                h.cancel()
                r = await h
            else:
                raise ApplicationError("unknown scenario " + scenario, non_retryable=True)
            return {"ok": r}
        except ActivityError as e:
            c = e.cause
            out: dict[str, Any] = {
                "error": "ActivityError",
                "retry_state": e.retry_state.name if e.retry_state is not None else None,
                "cause": type(c).__name__,
                "message": str(c),
            }
            if isinstance(c, ApplicationError):
                out["type"] = c.type
            if isinstance(c, TTimeoutError):
                out["timeout_type"] = c.type.name if c.type is not None else None
                out["last_heartbeat_details"] = list(c.last_heartbeat_details)
                inner = c.cause
                if isinstance(inner, TTimeoutError):
                    out["inner_timeout_type"] = inner.type.name if inner.type else None
                    out["inner_last_heartbeat_details"] = list(inner.last_heartbeat_details)
            return out


@workflow.defn
class ChildWorkflow:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "complete":
            return "child done"
        if mode == "fail":
            raise ApplicationError("child failed on purpose", type="ChildBoom", non_retryable=True)
        # "wait": block until signalled (or cancelled/terminated)
        await workflow.wait_condition(lambda: self.done)
        return "child released"

    @workflow.signal
    def release(self) -> None:
        self.done = True


@workflow.defn
class ParentWorkflow:
    def __init__(self) -> None:
        self.proceed = False

    @workflow.run
    async def run(self, scenario: str) -> dict:
        wid = workflow.info().workflow_id
        try:
            if scenario == "complete":
                return {"ok": await workflow.execute_child_workflow(ChildWorkflow.run, "complete", id=wid + "-child")}
            if scenario == "fail":
                return {"ok": await workflow.execute_child_workflow(ChildWorkflow.run, "fail", id=wid + "-child")}
            if scenario == "cancel":
                h = await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=wid + "-child")
                h.cancel()
                return {"ok": await h}
            if scenario == "terminate":
                # The client terminates the child; the parent sees the outcome.
                h = await workflow.start_child_workflow(ChildWorkflow.run, "wait", id=wid + "-child")
                return {"ok": await h}
            if scenario == "retry_timeout":
                # Each run of the child outlives its 1 s run timeout; its retry policy runs it
                # three times in all before the parent hears of the timeout.
                return {"ok": await workflow.execute_child_workflow(
                    SleepWorkflow.run, 3.0, id=wid + "-child",
                    run_timeout=timedelta(seconds=1), execution_timeout=timedelta(seconds=30),
                    task_timeout=timedelta(seconds=1),
                    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=1),
                                             backoff_coefficient=2.0, maximum_attempts=3),
                )}
            if scenario == "close_policy":
                for pol in (ParentClosePolicy.TERMINATE, ParentClosePolicy.ABANDON, ParentClosePolicy.REQUEST_CANCEL):
                    await workflow.start_child_workflow(
                        ChildWorkflow.run, "wait", id=f"{wid}-{pol.name}", parent_close_policy=pol
                    )
                await workflow.wait_condition(lambda: self.proceed)
                return {"ok": "parent closing"}
            raise ApplicationError("unknown scenario", non_retryable=True)
        except ChildWorkflowError as e:
            c = e.cause
            return {
                "error": "ChildWorkflowError",
                "cause": type(c).__name__,
                "message": str(c),
                "type": getattr(c, "type", None),
                "retry_state": e.retry_state.name if e.retry_state is not None else None,
            }

    @workflow.signal
    def go(self) -> None:
        self.proceed = True


@workflow.defn
class ExternalWorkflow:
    """Signals or cancels another workflow by id."""

    @workflow.run
    async def run(self, action: str, target_id: str) -> str:
        h = workflow.get_external_workflow_handle(target_id)
        try:
            if action == "signal":
                await h.signal(WaitSignalWorkflow.add, "from-external")
            elif action == "cancel":
                await h.cancel()
            return "sent"
        except ApplicationError as e:
            return "failed: " + str(e)
        except Exception as e:  # the SDK surfaces external failures as exceptions
            return f"failed: {type(e).__name__}: {e}"


@workflow.defn
class ContinueAsNewWorkflow:
    @workflow.run
    async def run(self, n: int, acc: list[int]) -> list[int]:
        acc = acc + [workflow.info().run_id and n]
        if n > 0:
            workflow.continue_as_new(args=[n - 1, acc])
        return acc


@workflow.defn
class MarkersWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        r = await workflow.execute_local_activity(say_hello, name, start_to_close_timeout=timedelta(seconds=5))
        if workflow.patched("sundial-patch-1"):
            r += " (patched)"
        return r


@workflow.defn
class UpsertWorkflow:
    @workflow.run
    async def run(self) -> str:
        workflow.upsert_search_attributes([KW_KEY.value_set("sundial-upserted")])
        workflow.upsert_memo({"note": "memo-upserted", "n": 7})
        await workflow.sleep(0.05)
        return "upserted"


@workflow.defn
class ManySignalsWorkflow:
    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.count >= n)
        return self.count

    @workflow.signal
    def tick(self, _: int) -> None:
        self.count += 1


ALL_WORKFLOWS = [
    HelloWorkflow, WaitSignalWorkflow, SleepWorkflow, TimerCancelWorkflow, InfoWorkflow,
    TaskFailOnceWorkflow, ActivityScenarioWorkflow, ChildWorkflow, ParentWorkflow,
    ExternalWorkflow, ContinueAsNewWorkflow, MarkersWorkflow, UpsertWorkflow, ManySignalsWorkflow,
    ShortTaskTimeoutWorkflow, RandomWorkflow,
]
ALL_ACTIVITIES = [
    say_hello, flaky, always_fail, sleepy, heartbeat_then_stall, heartbeat_until_cancelled,
    heartbeat_ignoring_cancel,
]


@workflow.defn
class UpdateWorkflow:
    """Workflow updates: a validated update that changes state, one that fails, and one that
    lets the run finish."""

    def __init__(self) -> None:
        self.items: list = []
        self.done = False

    @workflow.run
    async def run(self) -> list:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.update
    async def add(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @add.validator
    def validate_add(self, item: str) -> None:
        if item == "bad":
            raise ValueError("no bad items")

    @workflow.update
    async def add_later(self, item: str) -> int:
        await workflow.sleep(0.2)
        self.items.append(item)
        return len(self.items)

    @workflow.update
    async def boom(self) -> None:
        raise ApplicationError("update failed on purpose", type="Boom", non_retryable=True)

    @workflow.update
    def finish(self) -> str:
        self.done = True
        return "finished"


ALL_WORKFLOWS.append(UpdateWorkflow)
