"""Lost commit replies: the database (or the network to it) dies after PostgreSQL has committed a
write but before its reply reaches Sundial. The write is durable, Sundial sees it fail. A short
outage can do this to any write in flight; here a proxy (pg_proxy.py) does it to one chosen
write, on an otherwise idle server, so the outcome is deterministic:

- the start of a workflow (the SDK retries it with the same request id and is told it started);
- the firing of a user timer (the server retries the firing, which finds it already fired);
- the completion of a workflow task that schedules an activity (the SDK asks for it eagerly, so
  the same write starts it, and the activity never reaches the worker);
- the completion of a workflow task that starts a child workflow, and the completion of the
  child, which must tell its parent (both leave a transfer task in the write whose reply is
  lost: it must run although the server never heard that the write committed).

Each time the run must go on within SETTLE seconds: its next task must reach the worker, or the
timeout of the task that never reached it must fire. The worker runs without a workflow cache
(no sticky queue, so no sticky schedule-to-start timeout rescues a workflow task that never
reached matching), and its activities time out after 4 s.

Needs the PostgreSQL of `scripts/postgres.sh start DIR` (as test_outage.py)."""
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

import pytest

import harness
from outage_common import connect, history_summary, require_postgres
from outage_worker import RETRY, ChildWorkflow, OutageWorkflow, ParentWorkflow, expected
from pg_proxy import CommitReplyDropper

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest

HERE = os.path.dirname(os.path.abspath(__file__))
# Long enough for any retry or timeout of the server's own to have moved the run on.
SETTLE = float(os.environ.get("SUNDIAL_LOST_REPLY_SETTLE", "15"))
# The worker's activities time out after 4 s: less than the 10 s for which the server keeps
# timers in memory, so such a timeout is armed by the write that starts the activity or never.
ACTIVITY_TIMEOUT = "4"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Env:
    def __init__(self, lt, srv, proxy, tq, client, log):
        self.lt, self.srv, self.proxy, self.tq, self.client, self.log = lt, srv, proxy, tq, client, log

    def run(self, coro, timeout=SETTLE + 30):
        return self.lt.run(coro, timeout)

    def settle(self, wid: str, i: int, what: str, want=None) -> None:
        """The run must complete with its result (`want`, else `expected(i)`) within SETTLE
        seconds."""
        async def result():
            handle = self.client.get_workflow_handle(wid)
            try:
                return await asyncio.wait_for(handle.result(), SETTLE), None
            except asyncio.TimeoutError:
                return None, await history_summary(self.client, wid)
        t = time.monotonic()
        value, stuck = self.run(result())
        took = time.monotonic() - t
        print(f"\n{what}: " + (f"stuck after {took:.1f}s" if stuck else f"completed in {took:.1f}s")
              + f"; history: {stuck or self.run(history_summary(self.client, wid))}")
        assert stuck is None, (
            f"{what}: the commit was durable but its reply was lost, and the run has not moved "
            f"for {SETTLE:.0f}s: {stuck}\nserver log:\n{self.log()}")
        assert value == (expected(i) if want is None else want)


@pytest.fixture(scope="module")
def env():
    require_postgres()
    if harness.target_name() != "sundial":
        pytest.skip("the lost-reply tests are about sundial's own database")
    mp = pytest.MonkeyPatch()
    lt = harness.LoopThread()
    proxy = CommitReplyDropper(os.environ["SUNDIAL_PG_HOST"], int(os.environ["SUNDIAL_PG_PORT"]))
    port = lt.run(proxy.start())
    # The server (and `sundial schema`) reach PostgreSQL through the proxy.
    mp.setenv("SUNDIAL_TEST_STORE", "postgres")
    mp.setenv("SUNDIAL_PG_HOST", "127.0.0.1")
    mp.setenv("SUNDIAL_PG_PORT", str(port))
    tmp = tempfile.mkdtemp(prefix="sundial-lost-reply-")
    srv = None
    worker = None
    try:
        srv = harness.Server(db_file=os.path.join(tmp, "lost-reply.db")).start()
        tq = "lost-reply-" + uuid.uuid4().hex[:8]
        worker_log = open(os.path.join(tmp, "worker.log"), "ab")
        worker = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "outage_worker.py"), srv.address, tq, "--no-cache"],
            stdout=worker_log, stderr=subprocess.STDOUT, cwd=HERE,
            env={**os.environ, "SUNDIAL_OUTAGE_ACTIVITY_TIMEOUT": ACTIVITY_TIMEOUT})
        worker_log.close()
        client = lt.run(connect(srv.address, RETRY))
        e = Env(lt, srv, proxy, tq, client, lambda: ANSI.sub("", srv.tail_log(3000)))
        # One run through the proxy first: worker polling, writes committing.
        wid = f"{tq}-warmup"
        e.run(client.start_workflow(OutageWorkflow.run, 0, id=wid, task_queue=tq))
        e.settle(wid, 0, "warm-up (no reply lost)")
        yield e
    finally:
        if worker and worker.poll() is None:
            worker.kill()
            worker.wait()
        if srv:
            srv.cleanup()
        lt.run(proxy.close())
        lt.close()
        mp.undo()
        if not os.environ.get("SUNDIAL_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)


async def wait_for_event(env: Env, wid: str, event_type, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        r = await env.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(namespace="default",
                                               execution=WorkflowExecution(workflow_id=wid)),
            retry=True, timeout=timedelta(seconds=5))
        if any(e.event_type == event_type for e in r.history.events):
            return True
        await asyncio.sleep(0.05)
    return False


def quiet(env: Env) -> None:
    """Lets the writes of earlier steps finish, so that the next COMMIT is the one meant."""
    time.sleep(0.5)


def test_start_whose_commit_reply_was_lost(env):
    quiet(env)
    cuts = env.proxy.cuts
    env.proxy.arm()
    wid = f"{env.tq}-start"
    # The SDK retries the start with the same request id; the server answers that it started.
    env.run(env.client.start_workflow(OutageWorkflow.run, 1, id=wid, task_queue=env.tq,
                                      rpc_timeout=timedelta(seconds=10)))
    assert env.proxy.cuts == cuts + 1, "the start's COMMIT did not go through the proxy"
    env.settle(wid, 1, "StartWorkflowExecution")


def test_timer_whose_commit_reply_was_lost(env):
    i = 3  # OutageWorkflow sleeps 0.5 + (i % 4) * 0.5 = 2 s between its activities
    wid = f"{env.tq}-timer"
    env.run(env.client.start_workflow(OutageWorkflow.run, i, id=wid, task_queue=env.tq))

    assert env.run(wait_for_event(env, wid, EventType.EVENT_TYPE_TIMER_STARTED)), \
        "the workflow never started its timer"
    cuts = env.proxy.cuts
    env.proxy.arm()  # the next write is the timer firing, 2 s after it started
    deadline = time.monotonic() + 10
    while env.proxy.cuts == cuts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.proxy.cuts == cuts + 1, "no COMMIT went through the proxy while the timer was due"
    env.settle(wid, i, "timer firing")


def test_workflow_task_completion_whose_commit_reply_was_lost(env):
    """The completion of the workflow task after the timer, which schedules the second activity
    (the commits after TimerStarted: the firing, the task's start, its completion)."""
    i = 7  # a 2 s timer, as above
    wid = f"{env.tq}-completion"
    env.run(env.client.start_workflow(OutageWorkflow.run, i, id=wid, task_queue=env.tq))
    assert env.run(wait_for_event(env, wid, EventType.EVENT_TYPE_TIMER_STARTED)), \
        "the workflow never started its timer"
    cuts = env.proxy.cuts
    env.proxy.arm(skip=2)
    deadline = time.monotonic() + 10
    while env.proxy.cuts == cuts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.proxy.cuts == cuts + 1, "fewer than three COMMITs went through the proxy after the timer"
    env.settle(wid, i, "RespondWorkflowTaskCompleted")


def test_child_start_whose_commit_reply_was_lost(env):
    """The parent's first workflow task completes with StartChildWorkflowExecution (the commits
    of the parent's start: the start, its first task's start, that task's completion)."""
    quiet(env)
    i = 11
    wid = f"{env.tq}-parent-start"
    cuts = env.proxy.cuts
    env.proxy.arm(skip=2)
    env.run(env.client.start_workflow(ParentWorkflow.run, args=[i, False], id=wid,
                                      task_queue=env.tq))
    deadline = time.monotonic() + 10
    while env.proxy.cuts == cuts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.proxy.cuts == cuts + 1, "fewer than three COMMITs went through the proxy"
    env.settle(wid, i, "RespondWorkflowTaskCompleted starting a child", f"parent of child {i}")


def test_child_completion_whose_commit_reply_was_lost(env):
    """The child's last workflow task completes it, which must reach the parent (the commits
    after the signal: the signal, the child's task start, that task's completion)."""
    i = 13
    wid = f"{env.tq}-parent-close"
    env.run(env.client.start_workflow(ParentWorkflow.run, args=[i, True], id=wid,
                                      task_queue=env.tq))
    assert env.run(wait_for_event(env, wid, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)), \
        "the parent never saw its child start"
    child = f"{wid}-child"
    assert env.run(wait_for_event(env, child, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)), \
        "the child never finished its first workflow task"
    quiet(env)
    cuts = env.proxy.cuts
    env.proxy.arm(skip=2)
    env.run(env.client.get_workflow_handle(child).signal(ChildWorkflow.proceed))
    deadline = time.monotonic() + 10
    while env.proxy.cuts == cuts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert env.proxy.cuts == cuts + 1, "fewer than three COMMITs went through the proxy"
    env.settle(wid, i, "RespondWorkflowTaskCompleted closing a child", f"parent of child {i}")
