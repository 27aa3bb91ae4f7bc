"""Database outage test: Sundial on PostgreSQL under a steady load of workflows (each an activity,
a short timer and another activity); PostgreSQL is stopped for 30 s (a fast shutdown) and started
again. Meanwhile the server must stay up and answer with clean errors; afterwards every workflow
whose start was acknowledged, and every one whose unacknowledged start landed, must complete with
the right result.

Needs the PostgreSQL of `scripts/postgres.sh start DIR` (SUNDIAL_PG_* including SUNDIAL_PG_DIR):
without it the test is skipped, or fails when SUNDIAL_REQUIRE_SERVER_DBS is set. The server is
always on PostgreSQL, whatever SUNDIAL_TEST_STORE says.

SUNDIAL_OUTAGE_SECONDS (default 30), SUNDIAL_OUTAGE_RATE (starts per second, default 5),
SUNDIAL_OUTAGE_BEFORE / SUNDIAL_OUTAGE_AFTER (seconds of load before and after, default 8 / 10),
SUNDIAL_OUTAGE_SETTLE (seconds allowed for every workflow to complete once the database is back,
default 120), SUNDIAL_OUTAGE_STOP_MODE (pg_ctl's shutdown mode: fast, the default, or immediate,
a crash of the database server)."""
import asyncio
import collections
import concurrent.futures
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
from outage_common import connect, history_summary, require_postgres, timeout_events
from outage_worker import RETRY, OutageWorkflow, expected

from temporalio.api.common.v1 import Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType, HistoryEventFilterType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetSystemInfoRequest,
    GetWorkflowExecutionHistoryRequest,
    StartWorkflowExecutionRequest,
)
from temporalio.client import Client
from temporalio.converter import default as default_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RetryConfig, RPCError, RPCStatusCode

HERE = os.path.dirname(os.path.abspath(__file__))
POSTGRES_SH = str(harness.REPO_ROOT / "scripts" / "postgres.sh")

OUTAGE = float(os.environ.get("SUNDIAL_OUTAGE_SECONDS", "30"))
RATE = float(os.environ.get("SUNDIAL_OUTAGE_RATE", "5"))
BEFORE = float(os.environ.get("SUNDIAL_OUTAGE_BEFORE", "8"))
AFTER = float(os.environ.get("SUNDIAL_OUTAGE_AFTER", "10"))
SETTLE = float(os.environ.get("SUNDIAL_OUTAGE_SETTLE", "120"))
STOP_MODE = os.environ.get("SUNDIAL_OUTAGE_STOP_MODE", "fast")
# A request made while the database is down must be answered within this (with an error).
PROBE_TIMEOUT = 10.0
PROBE_EVERY = 2.0
# The starter's own SDK retries give up after 15 s, so its start calls fail during the outage
# and are retried by the test (a new request id each time: ALREADY_EXISTS then means an
# earlier attempt landed).
STARTER_RETRY = RetryConfig(initial_interval_millis=200, max_interval_millis=2000,
                            max_elapsed_time_millis=15_000, max_retries=50)
CONV = default_converter().payload_converter
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def postgres(command: str, pg_dir: str, *args: str) -> float:
    """`scripts/postgres.sh pause|resume DIR ...`; returns how long it took."""
    t = time.monotonic()
    out = subprocess.run(["bash", POSTGRES_SH, command, pg_dir, *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=90)
    assert out.returncode == 0, f"postgres.sh {command} failed:\n{out.stdout.decode(errors='replace')}"
    return time.monotonic() - t


class Load:
    """What the starter did: every id it tried, those acknowledged, and the errors it saw."""

    def __init__(self):
        self.ids = []                # (i, workflow id) in start order
        self.phase = {}              # workflow id -> "before" | "during" | "after"
        self.acked = {}              # workflow id -> (attempts, seconds to acknowledgement)
        self.already_first = []      # ALREADY_EXISTS on a first attempt (a fresh id)
        self.landed_earlier = []     # ALREADY_EXISTS on a retry: an earlier attempt had landed
        self.gave_up = []
        self.errors = collections.Counter()


async def start_one(client: Client, tq: str, i: int, wid: str, load: Load, deadline: float):
    t0 = time.monotonic()
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            await client.start_workflow(OutageWorkflow.run, i, id=wid, task_queue=tq,
                                        rpc_timeout=timedelta(seconds=PROBE_TIMEOUT))
            load.acked[wid] = (attempts, time.monotonic() - t0)
            return
        except WorkflowAlreadyStartedError:
            (load.already_first if attempts == 1 else load.landed_earlier).append(wid)
            load.acked[wid] = (attempts, time.monotonic() - t0)
            return
        except RPCError as e:
            load.errors[f"RPCError {e.status.name if e.status else e.status}"] += 1
        except Exception as e:  # noqa: BLE001 - anything else is retried the same way
            load.errors[type(e).__name__] += 1
        await asyncio.sleep(1.0)
    load.gave_up.append(wid)


async def run_load(addr: str, tq: str, prefix: str, load: Load, phase, stop_at, start_deadline):
    """Starts RATE workflows a second until stop_at() says so; each start retries on its own."""
    client = await connect(addr, STARTER_RETRY)
    tasks = []
    i = 0
    next_at = time.monotonic()
    while not stop_at():
        wid = f"{prefix}-{i}"
        load.ids.append((i, wid))
        load.phase[wid] = phase()
        tasks.append(asyncio.ensure_future(start_one(client, tq, i, wid, load, start_deadline())))
        i += 1
        next_at += 1.0 / RATE
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


async def probe_once(service, tq: str, wid: str, n: int, probes: list, known: list):
    """While the database is down: a start (it must write), GetSystemInfo (none), and a describe
    of a running workflow; each without retries, each must be answered within PROBE_TIMEOUT."""
    req = StartWorkflowExecutionRequest(
        namespace="default", workflow_id=wid, workflow_type=WorkflowType(name="OutageWorkflow"),
        task_queue=TaskQueue(name=tq), input=Payloads(payloads=CONV.to_payloads([n])), request_id=str(uuid.uuid4()),
        identity="outage-probe")
    calls = [("start", service.start_workflow_execution(req, retry=False,
                                                        timeout=timedelta(seconds=PROBE_TIMEOUT))),
             ("system-info", service.get_system_info(GetSystemInfoRequest(), retry=False,
                                                     timeout=timedelta(seconds=PROBE_TIMEOUT)))]
    if known:
        calls.append(("describe", service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace="default",
                                             execution=WorkflowExecution(workflow_id=known[-1])),
            retry=False, timeout=timedelta(seconds=PROBE_TIMEOUT))))

    async def timed(kind, call):
        t = time.monotonic()
        try:
            await asyncio.wait_for(call, PROBE_TIMEOUT + 5)
            outcome = "ok"
        except RPCError as e:
            outcome = e.status.name if e.status else str(e.status)
        except asyncio.TimeoutError:
            outcome = "hung"
        except Exception as e:  # noqa: BLE001
            outcome = type(e).__name__
        probes.append((kind, outcome, time.monotonic() - t))

    await asyncio.gather(*(timed(kind, call) for kind, call in calls))


async def fetch_close(client: Client, wid: str, deadline: float):
    """The close event of `wid` (waiting for it until `deadline`), or (None, last error)."""
    last = None
    while time.monotonic() < deadline:
        try:
            left = max(1.0, min(15.0, deadline - time.monotonic()))
            r = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace="default", execution=WorkflowExecution(workflow_id=wid),
                    wait_new_event=True,
                    history_event_filter_type=HistoryEventFilterType.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT),
                retry=True, timeout=timedelta(seconds=left))
            if r.history.events:
                return r.history.events[-1], None
        except RPCError as e:
            last = e.status.name if e.status else str(e)
            if e.status == RPCStatusCode.NOT_FOUND:
                return None, "NOT_FOUND"
            await asyncio.sleep(0.5)
        except Exception as e:  # noqa: BLE001
            last = type(e).__name__
            await asyncio.sleep(0.5)
    return None, last or "not closed"


def test_database_outage_under_load(monkeypatch):
    pg_dir = require_postgres()
    monkeypatch.setenv("SUNDIAL_TEST_STORE", "postgres")
    if harness.target_name() != "sundial":
        pytest.skip("the outage test is about sundial's own database")
    tmp = tempfile.mkdtemp(prefix="sundial-outage-")
    srv = harness.Server(db_file=os.path.join(tmp, "outage.db")).start()
    tq = "outage-" + uuid.uuid4().hex[:8]
    prefix = "outage-" + uuid.uuid4().hex[:6]
    worker_log_path = os.path.join(tmp, "worker.log")
    worker_log = open(worker_log_path, "ab")
    worker_cmd = [sys.executable, os.path.join(HERE, "outage_worker.py"), srv.address, tq]
    worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, cwd=HERE)
    worker_restarts = 0
    lt = harness.LoopThread()
    load = Load()
    marks = {}
    timeline = []
    paused = False
    t0 = time.monotonic()

    def note(msg):
        timeline.append(f"{time.monotonic() - t0:6.1f}s {msg}")

    def phase():
        return "before" if "pause" not in marks else ("during" if "resumed" not in marks else "after")

    try:
        note(f"server up on PostgreSQL ({srv.database}); load {RATE}/s")
        load_future = concurrent.futures.ThreadPoolExecutor(1).submit(
            lt.run, run_load(srv.address, tq, prefix, load, phase,
                             lambda: "resumed" in marks and time.monotonic() > marks["resumed"] + AFTER,
                             lambda: marks.get("resumed", time.monotonic() + 600) + 60),
            BEFORE + OUTAGE + AFTER + 200)
        time.sleep(BEFORE)
        note(f"started so far {len(load.ids)}, acknowledged {len(load.acked)}")

        # --- the outage ---
        log_offset = os.path.getsize(srv.log_path)
        marks["pause"] = time.monotonic()
        took = postgres("pause", pg_dir, STOP_MODE)
        paused = True
        marks["down"] = time.monotonic()
        note(f"PostgreSQL stopped (pg_ctl -m {STOP_MODE} took {took:.1f}s)")
        probes = []
        service = lt.run(connect(srv.address, RETRY)).service_client.workflow_service
        server_exits = []
        n_probe = 0
        probe_ids = []
        next_probe = time.monotonic()
        while time.monotonic() < marks["down"] + OUTAGE:
            if srv.proc.poll() is not None:
                server_exits.append(srv.proc.returncode)
                break
            if worker.poll() is not None:  # the server is under test, not the worker
                worker_restarts += 1
                note(f"worker exited ({worker.returncode}); restarted")
                worker = subprocess.Popen(worker_cmd, stdout=worker_log, stderr=subprocess.STDOUT, cwd=HERE)
            if time.monotonic() >= next_probe:
                wid = f"{prefix}-probe-{n_probe}"
                probe_ids.append((10_000 + n_probe, wid))
                known = list(load.acked)[-1:]  # a workflow that is running
                lt.run(probe_once(service, tq, wid, 10_000 + n_probe, probes, known),
                       PROBE_TIMEOUT + 10)
                n_probe += 1
                next_probe += PROBE_EVERY
            time.sleep(0.25)
        assert not server_exits, (f"the server exited during the outage ({server_exits[0]}):\n"
                                  + srv.tail_log(6000))
        outage_log = ANSI.sub("", open(srv.log_path, "rb").read()[log_offset:].decode(errors="replace"))
        note(f"outage over: started {len(load.ids)}, acknowledged {len(load.acked)}, "
             f"{len(probes)} probe calls")
        took = postgres("resume", pg_dir)
        paused = False
        marks["resumed"] = time.monotonic()
        marks["resumed_wall"] = time.time()
        note(f"PostgreSQL started again ({took:.1f}s)")

        # --- after: the load goes on for AFTER seconds, then every start must be acknowledged ---
        load_future.result(AFTER + 120)
        note(f"load done: {len(load.ids)} workflows, acknowledged {len(load.acked)}, "
             f"gave up {len(load.gave_up)}; start errors {dict(load.errors)}")
        assert srv.proc.poll() is None, f"the server exited:\n{srv.tail_log(6000)}"

        async def collect():
            client = await connect(srv.address, RETRY)
            deadline = marks["resumed"] + SETTLE
            sem = asyncio.Semaphore(40)

            async def one(i, wid):
                async with sem:
                    ev, err = await fetch_close(client, wid, deadline)
                    return i, wid, ev, err

            results = await asyncio.gather(*(one(i, w) for i, w in load.ids + probe_ids))
            stuck = [wid for _, wid, ev, err in results if ev is None and err != "NOT_FOUND"]
            summaries = {wid: await history_summary(client, wid) for wid in stuck[:15]}

            # How the closed ones got there: which needed a timeout to move on after the outage.
            async def timeouts(wid):
                async with sem:
                    try:
                        return wid, await timeout_events(client, wid)
                    except Exception:  # noqa: BLE001 - diagnostics only
                        return wid, ["(history unavailable)"]
            closed = [wid for _, wid, ev, _ in results if ev is not None]
            recovered_by = dict(await asyncio.gather(*(timeouts(w) for w in closed)))
            for wid in [w for w, evs in recovered_by.items() if evs][:5]:
                summaries[wid] = await history_summary(client, wid)
            return results, summaries, recovered_by

        results, summaries, recovered_by = lt.run(collect(), SETTLE + 120)
        # The server's close times (wall clock) of the runs started before or during the outage.
        early = [ev.event_time.ToMicroseconds() / 1e6 for _, wid, ev, _ in results
                 if ev is not None and load.phase.get(wid) in ("before", "during")]
        note(f"every workflow started before or during the outage closed within "
             f"{max(early) - marks['resumed_wall']:.1f}s of PostgreSQL being back" if early
             else "no workflow started before or during the outage closed")

        bad = []
        probe_landed = 0
        probe_wids = {w for _, w in probe_ids}
        for i, wid, ev, err in results:
            is_probe = wid in probe_wids
            where = "probe" if is_probe else load.phase[wid]
            if ev is None:
                if err == "NOT_FOUND":
                    if is_probe:
                        continue  # a probe's start failed and did not land: right
                    bad.append(f"{wid} ({where}): LOST, start acknowledged={wid in load.acked}")
                else:
                    bad.append(f"{wid} ({where}): not closed within {SETTLE:.0f}s ({err}): "
                               + summaries.get(wid, ""))
                continue
            if is_probe:
                probe_landed += 1
            if ev.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                bad.append(f"{wid} ({where}): {EventType.Name(ev.event_type)}")
                continue
            val = CONV.from_payloads(ev.workflow_execution_completed_event_attributes.result.payloads, [str])[0]
            if val != expected(i):
                bad.append(f"{wid} ({where}): result {val!r} != {expected(i)!r}")

        by_phase = collections.Counter(load.phase.values())
        slow = sorted((v[1] for w, v in load.acked.items() if load.phase[w] == "during"), reverse=True)
        outcomes = collections.Counter((k, o) for k, o, _ in probes)
        worst = max((s for _, _, s in probes), default=0.0)
        print("\n".join(timeline))
        print(f"workflows: {len(load.ids)} ({dict(by_phase)}), acknowledged {len(load.acked)}, "
              f"probe starts {len(probe_ids)} of which landed {probe_landed}")
        print(f"starts during the outage acknowledged after up to {slow[0] if slow else 0:.1f}s; "
              f"start attempts that failed: {dict(load.errors)}; retried starts answered "
              f"already started (an earlier attempt had landed): {len(load.landed_earlier)}")
        print(f"probe calls during the outage: {dict(outcomes)}; slowest answer {worst:.2f}s")
        print(f"worker restarts: {worker_restarts}")
        timed_out = collections.Counter(e for evs in recovered_by.values() for e in evs)
        print(f"closed workflows that moved on through a timeout: "
              f"{sum(1 for evs in recovered_by.values() if evs)} ({dict(timed_out)}); by phase: "
              f"{dict(collections.Counter(load.phase.get(w, 'probe') for w, evs in recovered_by.items() if evs))}")
        for wid in [w for w, evs in recovered_by.items() if evs][:5]:
            attempts, secs = load.acked.get(wid, (0, 0.0))
            print(f"  {wid} (start acknowledged after {attempts} attempt(s), {secs:.1f}s): {summaries[wid]}")
        db_lines = [ln for ln in outage_log.splitlines() if re.search(r"database", ln, re.I)]
        print(f"server log lines mentioning the database during the outage: {len(db_lines)}; first:")
        print("\n".join(ln[:300] for ln in db_lines[:3]))

        # The server stayed up and said why it failed.
        full_log = open(srv.log_path, "rb").read().decode(errors="replace")
        panics = [ln for ln in full_log.splitlines() if re.search(r"panick?ed|panic", ln, re.I)]
        assert not panics, "the server log shows a panic:\n" + "\n".join(panics[:10])
        assert db_lines, ("no server log line during the outage names the database:\n"
                          + outage_log[-4000:])
        # Requests during the outage were answered, with a clean error where the database was needed.
        hung = [p for p in probes if p[1] in ("hung", "DEADLINE_EXCEEDED")]
        assert not hung, f"requests hung during the outage: {hung}"
        start_probes = [o for k, o, _ in probes if k == "start"]
        assert start_probes, "no start was probed during the outage"
        wrong = [o for o in start_probes if o != "UNAVAILABLE"]
        assert not wrong, f"a start while the database was down was answered {wrong}, not UNAVAILABLE"
        unclean = {k: n for k, n in load.errors.items() if k != "RPCError UNAVAILABLE"}
        assert not unclean, f"start attempts failed otherwise than UNAVAILABLE: {unclean}"
        # Every start was acknowledged in the end; none was a duplicate; none is lost or stuck.
        assert not load.already_first, f"fresh ids reported already started: {load.already_first[:10]}"
        assert not load.gave_up, f"{len(load.gave_up)} starts never acknowledged: {load.gave_up[:10]}"
        assert by_phase["during"] > 0, "no workflow was started during the outage"
        assert not bad, (f"{len(bad)} of {len(results)} workflows wrong:\n" + "\n".join(bad[:40])
                         + "\n" + "\n".join(timeline))
    finally:
        if paused:
            try:
                postgres("resume", pg_dir)
            except Exception as e:  # noqa: BLE001
                print(f"restarting PostgreSQL failed: {e}")
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker_log.close()
        lt.close()
        if os.environ.get("SUNDIAL_KEEP_TMP"):
            print(f"kept: server log {srv.log_path}, worker log {worker_log_path}")
        srv.cleanup()
        if not os.environ.get("SUNDIAL_KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
