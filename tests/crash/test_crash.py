"""Crash test (issue 2 point 4): >=200 workflows with activities and timers; the server is killed
with SIGKILL at >=3 random moments and restarted on the same database file; every workflow must
complete with the right result.

SUNDIAL_CRASH_WORKFLOWS (default 200), SUNDIAL_CRASH_KILLS (default 3), SUNDIAL_CRASH_SEED."""
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

import harness
from crash_worker import CrashWorkflow, expected

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

HERE = os.path.dirname(os.path.abspath(__file__))
N = int(os.environ.get("SUNDIAL_CRASH_WORKFLOWS", "200"))
KILLS = int(os.environ.get("SUNDIAL_CRASH_KILLS", "3"))
# Starts are spread out (default 20 per second) so that the kills land while workflows are in flight.
START_INTERVAL = float(os.environ.get("SUNDIAL_CRASH_START_INTERVAL", "0.05"))


async def connect(addr: str) -> Client:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await Client.connect(addr)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def start_all(addr: str, tq: str, ids: list, started: set, log) -> None:
    client = await connect(addr)
    for i, wid in enumerate(ids):
        if wid in started:
            continue
        while True:
            try:
                await client.start_workflow(CrashWorkflow.run, i, id=wid, task_queue=tq, rpc_timeout=timedelta(seconds=5))
                started.add(wid)
                await asyncio.sleep(START_INTERVAL)
                break
            except WorkflowAlreadyStartedError:
                started.add(wid)  # an earlier attempt, unacknowledged before the kill, was persisted
                break
            except Exception as e:  # server down: retry the same start
                log(f"start {wid} retry after {type(e).__name__}")
                await asyncio.sleep(0.3)
                try:
                    client = await connect(addr)
                except Exception:
                    pass


async def close_event(addr: str, wid: str, deadline: float):
    """Returns the final close event of the workflow chain, retrying across server restarts."""
    client = None
    while time.monotonic() < deadline:
        try:
            client = client or await connect(addr)
            r = await client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=wid), wait_new_event=True,
                history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT),
                timeout=timedelta(seconds=15))
            if r.history.events:
                return r.history.events[-1]
        except Exception:
            client = None
            await asyncio.sleep(0.5)
    return None


def test_kill9_during_load():
    seed = int(os.environ.get("SUNDIAL_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"crash test seed={seed} workflows={N} kills={KILLS}")
    tmp = tempfile.mkdtemp(prefix="sundial-crash-")
    db = os.path.join(tmp, "crash.db")
    srv = harness.Server(db_file=db).start()
    tq = "crash-" + uuid.uuid4().hex[:8]
    worker_log = open(os.path.join(tmp, "worker.log"), "ab")
    worker_cmd = [sys.executable, os.path.join(HERE, "crash_worker.py"), srv.address, tq]
    worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, cwd=HERE)
    worker_restarts = 0
    events = []

    def log(msg):
        events.append(f"{time.monotonic():.1f} {msg}")

    lt = harness.LoopThread()
    ids = [f"crash-{seed}-{i}" for i in range(N)]
    started: set = set()
    try:
        starter = __import__("concurrent.futures").futures.ThreadPoolExecutor(1).submit(
            lambda: lt.run(start_all(srv.address, tq, ids, started, log), 600))
        t0 = time.monotonic()
        for k in range(KILLS):
            # spread the kills over the load: kill k waits for its share of starts, then a random delay
            wait_until = time.monotonic() + 120
            while len(started) < (k + 1) * N // (KILLS + 1) and time.monotonic() < wait_until:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            log(f"kill -9 #{k + 1} (started so far: {len(started)})")
            srv.kill9()
            time.sleep(rng.uniform(0.2, 1.5))
            srv.start()
            log(f"restarted #{k + 1}")
            if worker.poll() is not None:  # keep a worker around; the server is under test, not the worker
                worker_restarts += 1
                worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, cwd=HERE)
        starter.result(300)
        assert len(started) == N

        async def collect():
            deadline = time.monotonic() + 240
            sem = asyncio.Semaphore(40)

            async def one(wid):
                async with sem:
                    return wid, await close_event(srv.address, wid, deadline)
            return await asyncio.gather(*(one(w) for w in ids))

        results = lt.run(collect(), 300)
        bad = []
        from temporalio.converter import default as default_converter
        conv = default_converter().payload_converter
        for i, (wid, ev) in enumerate(results):
            if ev is None:
                bad.append(f"{wid}: not closed")
            elif ev.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                bad.append(f"{wid}: {EventType.Name(ev.event_type)}")
            else:
                val = conv.from_payloads(ev.workflow_execution_completed_event_attributes.result.payloads, [str])[0]
                if val != expected(i):
                    bad.append(f"{wid}: result {val!r} != {expected(i)!r}")
        print("\n".join(e for e in events if "kill" in e or "restarted" in e))
        print(f"completed in {time.monotonic() - t0:.1f}s; worker restarts: {worker_restarts}")
        assert not bad, f"{len(bad)} workflows wrong (seed {seed}):\n" + "\n".join(bad[:30]) + "\n" + "\n".join(events[-30:])
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        lt.close()
        srv.cleanup()
        if not os.environ.get("SUNDIAL_KEEP_TMP"):
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
