"""A scripted worker over raw WorkflowService RPCs (the `temporalio.api` protos), used by the
differential scenarios to drive exact command sequences."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any, Optional

from google.protobuf.duration_pb2 import Duration
from temporalio.api.command.v1 import (
    CancelTimerCommandAttributes,
    Command,
    CompleteWorkflowExecutionCommandAttributes,
    ContinueAsNewWorkflowExecutionCommandAttributes,
    RequestCancelActivityTaskCommandAttributes,
    ScheduleActivityTaskCommandAttributes,
    StartTimerCommandAttributes,
)
from temporalio.api.common.v1 import ActivityType, Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, TaskQueueKind
from temporalio.api.taskqueue.v1 import StickyExecutionAttributes, TaskQueue
from temporalio.api import workflowservice
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
    RespondWorkflowTaskFailedRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.service import RPCError

NS = "default"
IDENTITY = "sundial-diff"


def dur(seconds: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def secs(d: Duration) -> float:
    return d.seconds + d.nanos / 1e9


def payloads(*vals: Any) -> Payloads:
    return Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(v).encode()) for v in vals])


def decode(p: Payloads) -> list:
    return [json.loads(x.data) for x in p.payloads]


def etype(e) -> str:
    return EventType.Name(e.event_type).replace("EVENT_TYPE_", "")


def err_info(e: RPCError) -> dict:
    """Code, detail type and message of a gRPC error, in comparable form."""
    st = e.grpc_status
    return {
        "code": e.status.name,
        "details": [d.type_url.rsplit(".", 1)[-1] for d in st.details],
    }


def err_full(e: RPCError) -> dict:
    """err_info plus the exact message."""
    return {**err_info(e), "message": e.message}


def dval(msg, field: str):
    """A Duration field as seconds, or "unset" when the message does not carry it."""
    return secs(getattr(msg, field)) if msg.HasField(field) else "unset"


def present(msg) -> list[str]:
    """Names of the singular message fields that `msg` carries (HasField), sorted."""
    return sorted(f.name for f in msg.DESCRIPTOR.fields
                  if f.message_type is not None and not f.is_repeated and msg.HasField(f.name))


def cmd_timer(timer_id: str, seconds: float) -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_START_TIMER,
                   start_timer_command_attributes=StartTimerCommandAttributes(timer_id=timer_id, start_to_fire_timeout=dur(seconds)))


def cmd_cancel_timer(timer_id: str) -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_CANCEL_TIMER,
                   cancel_timer_command_attributes=CancelTimerCommandAttributes(timer_id=timer_id))


def cmd_complete(value: Any = "done") -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
                   complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes(result=payloads(value)))


def cmd_activity(activity_id: str, tq: str, *, stc: float = 0, s2c: float = 0, hb: float = 0,
                 retry: Optional[RetryPolicy] = None, input_val: Any = None) -> Command:
    a = ScheduleActivityTaskCommandAttributes(
        activity_id=activity_id, activity_type=ActivityType(name="DiffActivity"),
        task_queue=TaskQueue(name=tq, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL))
    if stc:
        a.start_to_close_timeout.CopyFrom(dur(stc))
    if s2c:
        a.schedule_to_close_timeout.CopyFrom(dur(s2c))
    if hb:
        a.heartbeat_timeout.CopyFrom(dur(hb))
    if retry is not None:
        a.retry_policy.CopyFrom(retry)
    if input_val is not None:
        a.input.CopyFrom(payloads(input_val))
    return Command(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, schedule_activity_task_command_attributes=a)


def cmd_cancel_activity(scheduled_event_id: int) -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_REQUEST_CANCEL_ACTIVITY_TASK,
                   request_cancel_activity_task_command_attributes=RequestCancelActivityTaskCommandAttributes(
                       scheduled_event_id=scheduled_event_id))


def cmd_continue_as_new(wf_type: str, tq: str, value: Any) -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
                   continue_as_new_workflow_execution_command_attributes=ContinueAsNewWorkflowExecutionCommandAttributes(
                       workflow_type=WorkflowType(name=wf_type), task_queue=TaskQueue(name=tq), input=payloads(value)))


class Raw:
    """Raw-RPC helper bound to one server; `tq` is unique per scenario run."""

    def __init__(self, client, label: str):
        self.client = client
        self.svc = client.workflow_service
        self.label = label
        self.tq = f"diff-{uuid.uuid4().hex[:10]}"
        self.wf_type = "DiffWorkflow"

    def new_id(self, name: str) -> str:
        return f"{name}-{uuid.uuid4().hex[:10]}"

    def ex(self, wid: str, run_id: str = "") -> WorkflowExecution:
        return WorkflowExecution(workflow_id=wid, run_id=run_id)

    async def start(self, wid: str, **kw):
        req = StartWorkflowExecutionRequest(
            namespace=NS, workflow_id=wid, workflow_type=WorkflowType(name=self.wf_type),
            task_queue=kw.pop("task_queue", None) or TaskQueue(name=self.tq), identity=IDENTITY,
            request_id=kw.pop("request_id", str(uuid.uuid4())), **kw)
        return await self.svc.start_workflow_execution(req)

    async def signal(self, wid: str, name: str = "sig", value: Any = "v", run_id: str = ""):
        return await self.svc.signal_workflow_execution(SignalWorkflowExecutionRequest(
            namespace=NS, workflow_execution=self.ex(wid, run_id), signal_name=name, input=payloads(value),
            identity=IDENTITY, request_id=str(uuid.uuid4())))

    async def poll_wft(self, tq: Optional[TaskQueue] = None, timeout: float = 10.0, allow_empty: bool = False):
        r = await self.svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace=NS, task_queue=tq or TaskQueue(name=self.tq, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            identity=IDENTITY), timeout=timedelta(seconds=timeout))
        if not allow_empty:
            assert r.task_token, f"[{self.label}] empty workflow task poll on {self.tq}"
        return r

    async def poll_activity(self, tq: Optional[str] = None, timeout: float = 10.0, allow_empty: bool = False):
        r = await self.svc.poll_activity_task_queue(PollActivityTaskQueueRequest(
            namespace=NS, task_queue=TaskQueue(name=tq or self.tq), identity=IDENTITY),
            timeout=timedelta(seconds=timeout))
        if not allow_empty:
            assert r.task_token, f"[{self.label}] empty activity poll on {tq or self.tq}"
        return r

    async def complete(self, token: bytes, commands, **kw):
        return await self.svc.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest(
            namespace=NS, task_token=token, commands=commands, identity=IDENTITY, **kw))

    async def fail_wft(self, token: bytes, message: str = "boom"):
        from temporalio.api.enums.v1 import WorkflowTaskFailedCause
        from temporalio.api.failure.v1 import Failure
        return await self.svc.respond_workflow_task_failed(RespondWorkflowTaskFailedRequest(
            namespace=NS, task_token=token, identity=IDENTITY,
            cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
            failure=Failure(message=message)))

    async def history(self, wid: str, run_id: str = "", **kw):
        events, token = [], b""
        while True:
            r = await self.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace=NS, execution=self.ex(wid, run_id), next_page_token=token, **kw))
            events += list(r.history.events)
            token = r.next_page_token
            if not token or not r.history.events:
                return events

    async def types(self, wid: str, run_id: str = "") -> list[str]:
        return [etype(e) for e in await self.history(wid, run_id)]

    async def wait_for_event(self, wid: str, type_name: str, timeout: float = 15.0, run_id: str = ""):
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            evs = await self.history(wid, run_id)
            for e in evs:
                if etype(e) == type_name:
                    return evs
            await asyncio.sleep(0.1)
        raise AssertionError(f"[{self.label}] {type_name} never appeared in {wid}: {[etype(e) for e in evs]}")

    def sticky(self, name: str, timeout: float = 10.0) -> StickyExecutionAttributes:
        return StickyExecutionAttributes(
            worker_task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_STICKY, normal_name=self.tq),
            schedule_to_start_timeout=dur(timeout))
