"""Helpers shared by the outage tests."""
import asyncio
import os
import time
from datetime import timedelta

import pytest

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState, PendingWorkflowTaskState
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client
from temporalio.service import RetryConfig


def require_postgres() -> str:
    missing = [v for v in ("SUNDIAL_PG_HOST", "SUNDIAL_PG_PORT", "SUNDIAL_PG_USER",
                           "SUNDIAL_PG_PASSWORD", "SUNDIAL_PG_DIR") if not os.environ.get(v)]
    if missing:
        msg = (f"the outage test needs the PostgreSQL of scripts/postgres.sh ({', '.join(missing)} "
               "not set): eval \"$(bash scripts/postgres.sh start DIR)\" first")
        if os.environ.get("SUNDIAL_REQUIRE_SERVER_DBS"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    pg_dir = os.environ["SUNDIAL_PG_DIR"]
    if not os.path.exists(os.path.join(pg_dir, "port")):
        pytest.fail(f"SUNDIAL_PG_DIR={pg_dir} holds no server started by scripts/postgres.sh",
                    pytrace=False)
    return pg_dir


async def connect(addr: str, retry: RetryConfig) -> Client:
    deadline = time.monotonic() + 30
    while True:
        try:
            return await Client.connect(addr, retry_config=retry)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


TIMEOUT_EVENTS = {EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT}


async def timeout_events(client: Client, wid: str) -> list:
    """The timeout events in a workflow's history (names)."""
    r = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(namespace="default",
                                           execution=WorkflowExecution(workflow_id=wid)),
        retry=True, timeout=timedelta(seconds=10))
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
            for e in r.history.events if e.event_type in TIMEOUT_EVENTS]


async def history_summary(client: Client, wid: str) -> str:
    """A stuck workflow's history (event types) and pending work, for the failure message."""
    try:
        events = []
        token = b""
        for _ in range(20):
            r = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(namespace="default",
                                                   execution=WorkflowExecution(workflow_id=wid),
                                                   next_page_token=token),
                retry=True, timeout=timedelta(seconds=10))
            events += r.history.events
            token = r.next_page_token
            if not token:
                break
        names = []
        for e in events:
            name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                name += f"(attempt {e.activity_task_started_event_attributes.attempt})"
            names.append(name)
        d = await client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace="default",
                                             execution=WorkflowExecution(workflow_id=wid)),
            retry=True, timeout=timedelta(seconds=10))
        pending = [f"activity {a.activity_type.name} "
                   f"{PendingActivityState.Name(a.state).removeprefix('PENDING_ACTIVITY_STATE_')} "
                   f"attempt {a.attempt}" for a in d.pending_activities]
        if d.HasField("pending_workflow_task"):
            state = PendingWorkflowTaskState.Name(d.pending_workflow_task.state)
            pending.append(f"workflow task {state.removeprefix('PENDING_WORKFLOW_TASK_STATE_')} "
                           f"attempt {d.pending_workflow_task.attempt}")
        return f"{' '.join(names)} | pending: {pending or 'none'}"
    except Exception as e:  # noqa: BLE001
        return f"(history unavailable: {e!r})"
