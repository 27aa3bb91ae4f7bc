#!/usr/bin/env python3
"""Side-by-side benchmark of Sundial and Temporal's dev server, in one invocation.

For each repetition and each server (order alternating between repetitions), on fresh
data: spawn the server, time spawn-to-first-successful-GetSystemInfo, let it settle and
read its idle RSS and idle CPU, run the workload matrix with the Go driver (and the
Python-SDK workload), reading the server's CPU seconds from /proc around every run and
sampling its RSS, then stop it. Writes results.json, results.md (table with Sundial /
Temporal ratios) and results.png into the output directory.

With --store postgres the servers are Temporal Server (built by scripts/install-temporal-server.sh)
and `sundial server start`, each on fresh databases of one throwaway PostgreSQL
(scripts/postgres.sh), schemas applied with each one's SQL tool; around every run the
runner also reads pg_stat_database / pg_stat_wal (commits and WAL fsyncs per unit).

Everything targets 127.0.0.1 and every loop is bounded in count and time.
Run through bench/run.sh (it uses the venv made by scripts/install-bench-deps.sh).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DRIVER = BENCH / "driver" / "bench-driver"
FSYNC = BENCH / "fsync" / "fsync-probe"
SDK = BENCH / "sdk" / "sdk_bench.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# (workload, concurrency). `sdk` runs the Python SDK script, the rest the Go driver.
FULL_MATRIX = [
    ("start", 8), ("start", 32),
    ("activity", 1), ("activity", 8), ("activity", 32), ("activity", 128),
    ("signal", 32),
    ("timer", 32),
    ("sdk", 8),
]
QUICK_MATRIX = [("start", 8), ("activity", 1), ("activity", 8), ("signal", 8), ("timer", 8), ("sdk", 2)]
OVERLOAD = [("activity", 1024)]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


# ---- /proc helpers -------------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            kids.setdefault(int(rest[1]), []).append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def proc_tree(pid: int) -> list[int]:
    kids = _children_map()
    out, todo = [], [pid]
    while todo and len(out) < 10000:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime+stime of the process tree rooted at pid (all threads)."""
    total = 0.0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # after the comm: state=0 ... utime=11 stime=12 (0-based in this slice)
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS VmHWM) summed over the process tree."""
    cur = hwm = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        cur += int(line.split()[1]) * 1024
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1]) * 1024
        except OSError:
            pass
    return cur, hwm


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def cpu_pressure() -> float | None:
    """/proc/pressure/cpu "some avg10": % of the last 10 s in which runnable tasks waited
    for a CPU. On a shared machine this says how much the numbers were disturbed."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return float(line.split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        pass
    return None


def machine_info() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "mem_mib": mem,
        "kernel": platform.release(),
        "loadavg_at_start": loadavg(),
        "cpu_pressure_at_start": cpu_pressure(),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sqlite_journal_mode(db: Path) -> str:
    """From the database header: bytes 18/19 are 2 for WAL, 1 for the rollback journal."""
    try:
        with open(db, "rb") as f:
            h = f.read(20)
        if len(h) < 20 or not h.startswith(b"SQLite format 3\0"):
            return "unknown (not an SQLite file)"
        return {1: "rollback journal", 2: "wal"}.get(h[18], f"unknown ({h[18]})")
    except OSError:
        return "no file"


class SyncCounter:
    """Counts the server's fsync/fdatasync calls with `perf stat` on the syscall tracepoints
    (kernel-side counting, no ptrace, negligible overhead). Unavailable → counts are None."""

    EVENTS = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync"

    def __init__(self, pid: int, out: Path):
        self.out, self.proc = out, None
        if shutil.which("perf"):
            try:
                self.proc = subprocess.Popen(["perf", "stat", "-x,", "-e", self.EVENTS, "-p", str(pid),
                                              "-o", str(out)], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                time.sleep(0.2)  # let it attach
            except OSError:
                self.proc = None

    def stop(self) -> dict | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None
        counts = {}
        try:
            for line in self.out.read_text().splitlines():
                f = line.split(",")
                if len(f) > 2 and f[2].startswith("syscalls:sys_enter_"):
                    counts[f[2].split("sys_enter_")[1]] = int(f[0]) if f[0].isdigit() else None
        except OSError:
            return None
        if not counts or any(v is None for v in counts.values()):
            return None
        return counts


# ---- PostgreSQL mode -------------------------------------------------------------------

PG_SCRIPT = ROOT / "scripts" / "postgres.sh"
# Both servers get the same history shard count on PostgreSQL (the SQLite mode compares the
# dev servers as shipped instead: Temporal's start-dev has 1 shard, Sundial's 4).
PG_SHARDS = 4
PG_MAX_CONNS = 20  # per store, both servers (the figure in Temporal's sample SQL configs)
# The one dynamic config both servers get in the PostgreSQL mode: Temporal's default frontend
# limits (2,400 requests/s per frontend and per namespace) would cap the load, not the server.
PG_DYNAMIC_CONFIG = """frontend.rps:
  - value: 1000000
frontend.namespaceRPS:
  - value: 1000000
"""


class PgCluster:
    """A throwaway PostgreSQL from scripts/postgres.sh (127.0.0.1, durable settings), shared by
    both servers, each session on databases of its own. Counters come from psql over TCP."""

    def __init__(self, dir_: Path):
        self.dir = dir_
        self.env: dict[str, str] = {}
        self.started = False

    def start(self) -> None:
        p = subprocess.run(["bash", str(PG_SCRIPT), "start", str(self.dir)], capture_output=True,
                           text=True, timeout=600, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh start failed: {p.stderr[-2000:]}")
        for line in p.stdout.splitlines():
            if line.startswith("export "):
                for kv in line[len("export "):].split():
                    k, _, v = kv.partition("=")
                    self.env[k] = v
        self.started = True
        self.host, self.port = self.env["SUNDIAL_PG_HOST"], int(self.env["SUNDIAL_PG_PORT"])
        self.user, self.password = self.env["SUNDIAL_PG_USER"], self.env["SUNDIAL_PG_PASSWORD"]
        if self.host != "127.0.0.1":
            raise RuntimeError(f"PostgreSQL not on 127.0.0.1: {self.host}")

    def stop(self) -> None:
        if self.started:
            subprocess.run(["bash", str(PG_SCRIPT), "stop", str(self.dir)], capture_output=True,
                           timeout=120, stdin=subprocess.DEVNULL)
            self.started = False

    def psql(self, sql: str, db: str = "postgres") -> str:
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="10")
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                            "-p", str(self.port), "-U", self.user, "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        if p.returncode != 0:
            raise RuntimeError(f"psql failed: {sql[:200]}: {p.stderr.strip()[-1000:]}")
        return p.stdout.strip()

    def version(self) -> str:
        return self.psql("SHOW server_version")

    def settings(self) -> dict:
        names = ["fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_buffers",
                 "max_connections", "commit_delay", "wal_writer_delay", "max_wal_size", "checkpoint_timeout"]
        out = self.psql("SELECT name || '=' || current_setting(name) FROM pg_settings "
                        f"WHERE name IN ({', '.join(repr(n) for n in names)}) ORDER BY name")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def stats(self, dbs: list[str]) -> dict:
        """Counters at this moment. pg_stat_database / pg_stat_wal are updated by each backend
        at most once a second while it is busy and within ~10 s once it is idle, so callers
        let them settle before reading (--pg-settle). The next-xid reading is immediate."""
        names = ", ".join(f"'{d}'" for d in dbs)
        row = self.psql(
            "SELECT (SELECT coalesce(sum(xact_commit), 0) FROM pg_stat_database WHERE datname IN (" + names + ")),"
            " (SELECT coalesce(sum(xact_rollback), 0) FROM pg_stat_database WHERE datname IN (" + names + ")),"
            " wal_records, wal_bytes, wal_write, wal_sync,"
            " pg_snapshot_xmax(pg_current_snapshot())::text::bigint"
            " FROM pg_stat_wal").split("|")
        keys = ["xact_commit", "xact_rollback", "wal_records", "wal_bytes", "wal_write", "wal_sync", "next_xid"]
        out = {k: int(float(v)) for k, v in zip(keys, row)}
        out["t"] = time.monotonic()
        return out

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.dir / "data" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu(self) -> float:
        pid = self.postmaster_pid()
        return cpu_seconds(pid) if pid else float("nan")

    def db_bytes(self, dbs: list[str]) -> int | None:
        names = ", ".join(f"'{d}'" for d in dbs)
        try:
            return int(self.psql(f"SELECT coalesce(sum(pg_database_size(datname)), 0) FROM pg_database "
                                 f"WHERE datname IN ({names})"))
        except (RuntimeError, ValueError):
            return None

    def drop(self, db: str) -> None:
        try:
            self.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        except RuntimeError as e:
            log("drop failed:", e)


PG_COUNTERS = ["xact_commit", "xact_rollback", "wal_records", "wal_bytes", "wal_write", "wal_sync", "next_xid"]


def pg_delta(a: dict, b: dict) -> dict:
    d = {k: b[k] - a[k] for k in PG_COUNTERS}
    d["s"] = round(b["t"] - a["t"], 3)
    return d


def schema_commands(tool: list[str], pg: PgCluster, db: str, kind: str) -> list[list[str]]:
    """The operator's sequence, the same flags for Temporal's temporal-sql-tool and for
    `sundial schema`: create-database, setup-schema -v 0.0, update-schema with the embedded
    schema, for the main and the visibility database."""
    conn = ["--plugin", "postgres12", "--ep", pg.host, "-p", str(pg.port), "-u", pg.user,
            "--pw", pg.password]
    cmds = []
    for name, schema in [(db, "postgresql/v12/temporal"), (f"{db}_visibility", "postgresql/v12/visibility")]:
        cmds.append(tool + conn + ["--db", name, "create-database"])
        cmds.append(tool + conn + ["--db", name, "setup-schema", "-v", "0.0"])
        cmds.append(tool + conn + ["--db", name, "update-schema", "--schema-name", schema])
    return cmds


def _store_yaml(name: str, db: str, pg: PgCluster) -> str:
    return f"""    {name}:
      sql:
        pluginName: "postgres12"
        databaseName: "{db}"
        connectAddr: "{pg.host}:{pg.port}"
        connectProtocol: "tcp"
        user: "{pg.user}"
        password: "{pg.password}"
        maxConns: {PG_MAX_CONNS}
        maxIdleConns: {PG_MAX_CONNS}
        maxConnLifetime: "1h"
"""


def server_yaml(kind: str, db: str, pg: PgCluster, ports: dict, dynconfig: Path) -> str:
    """A Temporal server config file for one process running all four services on loopback,
    both stores on PostgreSQL (postgres12 plugin). Sundial reads the same file (it warns once
    about the keys it does not use, e.g. the other services' ports). The dynamic config file
    (PG_DYNAMIC_CONFIG) lifts the frontend rate limits; everything else is each server's
    default."""
    fe = ports["frontend"]
    services = ""
    for svc in ("frontend", "matching", "history", "worker"):
        services += f"""  {svc}:
    rpc:
      grpcPort: {ports[svc]}
      membershipPort: {ports[svc + '_membership']}
      bindOnIP: "127.0.0.1"
"""
        if svc == "frontend":
            services += f"      httpPort: {ports['frontend_http']}\n"
    return f"""# Written by bench/run.py --store postgres for {kind}.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: {PG_SHARDS}
  datastores:
{_store_yaml("default", db, pg)}{_store_yaml("visibility", db + "_visibility", pg)}global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  pprof:
    port: 0
services:
{services}clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:{fe}"
      httpAddress: "127.0.0.1:{ports['frontend_http']}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: "{dynconfig}"
  pollInterval: "10s"
"""


# ---- servers -------------------------------------------------------------------------

class Server:
    def __init__(self, kind: str, argv: list[str], port: int, data_dir: Path, db: Path):
        self.kind, self.argv, self.port, self.data_dir, self.db = kind, argv, port, data_dir, db
        self.proc: subprocess.Popen | None = None
        self.peak_rss = 0
        self.pg_dbs: list[str] = []  # --store postgres: the databases this server uses
        self._stop_sampler = threading.Event()
        self._sampler: threading.Thread | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> int:
        out = open(self.data_dir / "server.log", "wb")
        t0 = time.time_ns()
        # Its own process group (so the whole tree can be signalled) but the runner's session:
        # with the kernel's autogroup scheduling a session of its own would give the server a
        # fixed half of the CPU against the driver's session, whatever its thread count.
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, process_group=0,
                                     cwd=self.data_dir)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return t0

    def _sample(self):
        while not self._stop_sampler.wait(0.05):
            if self.proc is None or self.proc.poll() is not None:
                return
            cur, hwm = rss_bytes(self.proc.pid)
            self.peak_rss = max(self.peak_rss, cur, hwm)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.alive() else float("nan")

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)[0] if self.alive() else 0

    def stop(self) -> dict:
        info = {"exit_code": None, "stop_s": None, "killed": False}
        if self.proc is None:
            return info
        cur, hwm = rss_bytes(self.proc.pid) if self.alive() else (0, 0)
        self.peak_rss = max(self.peak_rss, cur, hwm)
        self._stop_sampler.set()
        t = time.monotonic()
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                info["killed"] = True
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        info["exit_code"] = self.proc.returncode
        info["stop_s"] = round(time.monotonic() - t, 3)
        return info


def low_free_port() -> int:
    """A free loopback port below 32768: Temporal's PostgreSQL schema keeps a member's port in
    a SMALLINT (cluster_membership.rpc_port), so a port from the ephemeral range (32768 and up
    here) makes its membership heartbeat fail at start. Used for both servers alike."""
    import random
    for _ in range(1000):
        port = random.randrange(20000, 32768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32768")


def TEMPORAL_START(cfg: Path) -> list[str]:
    """Temporal Server 1.32's command line for one config file, all four services."""
    return ["--config-file", str(cfg), "--allow-no-auth", "start"]


def make_pg_server(kind: str, args, data_dir: Path, rep: int) -> Server:
    """--store postgres: a config file on databases of this session's own; the schema is
    applied by session() before the spawn."""
    db = f"bench_{kind}_r{rep}"
    names = ["frontend", "frontend_http", "frontend_membership", "matching", "matching_membership",
             "history", "history_membership", "worker", "worker_membership"]
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):
        ports = {n: low_free_port() for n in names}
    cfg = data_dir / "config.yaml"
    dynconfig = data_dir / "dynamicconfig.yaml"
    dynconfig.write_text(PG_DYNAMIC_CONFIG)
    cfg.write_text(server_yaml(kind, db, args.pg, ports, dynconfig))
    if kind == "temporal":
        argv = [str(args.temporal_server_bin)] + TEMPORAL_START(cfg)
    else:
        argv = [str(args.sundial_bin), "server", "start", "--config-file", str(cfg)] + list(args.sundial_arg)
    srv = Server(kind, argv, ports["frontend"], data_dir, data_dir / "no-sqlite-file")
    srv.pg_dbs = [db, db + "_visibility"]
    return srv


def make_server(kind: str, args, data_dir: Path, rep: int = 1) -> Server:
    if args.store == "postgres" and kind != "mock":
        return make_pg_server(kind, args, data_dir, rep)
    port = free_port()
    db = data_dir / f"{kind}.db"
    if kind == "mock":
        argv = [str(DRIVER), "mock", "-addr", f"127.0.0.1:{port}", "-for", "3h"]
    elif kind == "temporal":
        argv = [str(args.temporal_bin), "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(port), "--db-filename", str(db),
                "--log-level", "warn"]
        for p in args.temporal_pragma:
            argv += ["--sqlite-pragma", p]
    else:
        argv = [str(args.sundial_bin), "server", "start-dev", "--port", str(port),
                "--db-filename", str(db)] + list(args.sundial_arg)
    return Server(kind, argv, port, data_dir, db)


# ---- one server session --------------------------------------------------------------

def create_namespace(srv: Server, args, sess: dict) -> None:
    """`temporal operator namespace create` against the server, retried until the frontend
    answers (at most ~170 s); the outcome goes into the session record."""
    deadline = time.monotonic() + 170
    attempts, last = 0, ""
    while time.monotonic() < deadline and srv.alive():
        attempts += 1
        try:
            p = subprocess.run([str(args.temporal_bin), "operator", "namespace", "create",
                                "--namespace", "default", "--address", srv.addr],
                               capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
            last = (p.stderr or p.stdout).strip()[-500:]
            if p.returncode == 0 or "already" in last.lower():
                sess["namespace_create"] = {"attempts": attempts, "ok": True}
                return
        except subprocess.TimeoutExpired:
            last = "timed out"
        time.sleep(0.5)
    sess["namespace_create"] = {"attempts": attempts, "ok": False, "last_error": last}


def run_json(cmd: list[str], timeout: float) -> tuple[dict | None, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return None, f"timed out after {timeout}s: {(e.stderr or '')[-2000:] if isinstance(e.stderr, str) else ''}"
    err = p.stderr.strip()
    if err:
        for line in err.splitlines()[-25:]:
            log("   |", line)
    try:
        return json.loads(p.stdout), err
    except json.JSONDecodeError:
        return None, f"exit {p.returncode}: {err[-2000:]}"


def run_workload(srv: Server, workload: str, conc: int, args) -> dict:
    warm, dur = args.warmup, args.duration
    wf_timeout = 30.0
    if conc >= 1024:
        dur, wf_timeout = max(dur, 20.0), 120.0
    if workload == "sdk":
        cmd = [sys.executable, str(SDK), "--addr", srv.addr, "--concurrency", str(conc),
               "--duration", str(dur), "--warmup", str(warm + 1.0), "--verify", str(args.verify),
               "--wf-timeout", str(wf_timeout)]
    else:
        cmd = [str(DRIVER), "run", "-addr", srv.addr, "-workload", workload,
               "-concurrency", str(conc), "-duration", f"{dur}s", "-warmup", f"{warm}s",
               "-verify", str(args.verify), "-wf-timeout", f"{wf_timeout}s",
               f"-eager={'true' if args.eager else 'false'}"]
    la, pressure = loadavg(), cpu_pressure()
    syncs = SyncCounter(srv.proc.pid, srv.data_dir / "perf-stat.txt") if args.count_syncs else None
    pg = args.pg if srv.pg_dbs else None
    pg0 = pg.stats(srv.pg_dbs) if pg else None
    pgcpu0 = pg.cpu() if pg else None
    cpu0, t0 = srv.cpu(), time.monotonic()
    res, err = run_json(cmd, timeout=warm + dur + wf_timeout + 240)
    cpu1, el = srv.cpu(), time.monotonic() - t0
    pgcpu1 = pg.cpu() if pg else None
    sync_counts = syncs.stop() if syncs else None
    pg1 = None
    if pg:
        time.sleep(args.pg_settle)  # the backends' pending statistics reach pg_stat_* (see PgCluster.stats)
        pg1 = pg.stats(srv.pg_dbs)
    row = {"workload": workload, "concurrency": conc, "loadavg_before": la,
           "cpu_pressure_before": pressure, "cpu_pressure_after": cpu_pressure(),
           "server_alive": srv.alive(), "wall_s": round(el, 3)}
    if res is None:
        row["failed"] = err or "no result"
        return row
    row.update(res)
    row["server_cpu_s"] = cpu1 - cpu0
    units = res.get("units_total") or 0
    row["server_cpu_per_unit_ms"] = (cpu1 - cpu0) * 1000 / units if units else None
    row["server_cpu_util"] = (cpu1 - cpu0) / el if el > 0 else None
    row["server_syncs"] = sync_counts
    if sync_counts is not None and units:
        row["server_syncs_per_unit"] = sum(sync_counts.values()) / units
    row["check_failures"] = (res.get("inline_failed", 0) + res.get("verify_failed", 0)
                             + res.get("unexpected_workflow_tasks", 0))
    if pg and pg0 and pg1:
        d = pg_delta(pg0, pg1)
        row["pg"] = d
        row["pg_cpu_s"] = pgcpu1 - pgcpu0
        row["pg_cpu_per_unit_ms"] = (pgcpu1 - pgcpu0) * 1000 / units if units else None
        if units:
            row["pg_per_unit"] = {k: d[k] / units for k in PG_COUNTERS}
            # The same less what the idle server did in as long a time (its background polling
            # and lease renewals; measured in session()).
            idle = getattr(srv, "pg_idle_rate", None)
            if idle:
                row["pg_net_per_unit"] = {k: (d[k] - idle[k] * d["s"]) / units for k in PG_COUNTERS}
    return row


def session(kind: str, rep: int, args, out_dir: Path, matrix) -> dict:
    data_dir = out_dir / "tmp" / f"{kind}-rep{rep}"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    srv = make_server(kind, args, data_dir, rep)
    sess = {"server": kind, "rep": rep, "argv": srv.argv, "runs": []}
    if srv.pg_dbs:
        sess["store"] = "postgres"
        sess["pg_databases"] = srv.pg_dbs
        sess["config_yaml"] = (data_dir / "config.yaml").read_text()
        tool = [str(args.temporal_sql_tool)] if kind == "temporal" else [str(args.sundial_bin), "schema"]
        ts = time.monotonic()
        for cmd in schema_commands(tool, args.pg, srv.pg_dbs[0], kind):
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                sess["failed"] = f"schema: {' '.join(cmd[len(tool):])}: exit {p.returncode}: {(p.stderr or p.stdout)[-1500:]}"
                log(f"[{kind} rep {rep}] SCHEMA FAILED: {sess['failed']}")
                for d in srv.pg_dbs:
                    args.pg.drop(d)
                return sess
        sess["schema_s"] = round(time.monotonic() - ts, 3)
        sess["schema_commands"] = [" ".join(["<tool>"] + c[len(tool):]) for c in
                                   schema_commands(tool, args.pg, srv.pg_dbs[0], kind)[:3]]
        log(f"[{kind} rep {rep}] schema applied in {sess['schema_s']:.1f}s ({' '.join(tool[-1:])})")
    log(f"[{kind} rep {rep}] spawn: {' '.join(srv.argv)}")
    t0 = srv.spawn()
    ns_thread = None
    try:
        if srv.pg_dbs:
            # Neither `start` creates a namespace: register `default` the operator's way,
            # retrying while the frontend comes up, alongside the readiness probe.
            ns_thread = threading.Thread(target=create_namespace, args=(srv, args, sess), daemon=True)
            ns_thread.start()
        ready, err = run_json([str(DRIVER), "ready", "-addr", srv.addr, "-since", str(t0),
                               "-timeout", "180s" if srv.pg_dbs else "60s"],
                              timeout=210 if srv.pg_dbs else 90)
        sess["ready"] = ready
        if ready is None or not srv.alive():
            sess["failed"] = f"not ready: {err}; server alive={srv.alive()}"
            log(f"[{kind} rep {rep}] NOT READY: {err}")
            return sess
        log(f"[{kind} rep {rep}] ready: GetSystemInfo {ready['system_info_s']:.3f}s, "
            f"first start {ready['first_start_s']:.3f}s")
        settle = 1.0 if args.quick else 3.0
        c0 = srv.cpu()
        time.sleep(settle)
        sess["idle_cpu_util"] = (srv.cpu() - c0) / settle
        sess["idle_rss_bytes"] = srv.rss()
        if srv.pg_dbs:
            # What the idle server does to the database per second (commits of its background
            # work), over one settle period after the setup's statistics have arrived.
            time.sleep(args.pg_settle)
            a = args.pg.stats(srv.pg_dbs)
            time.sleep(args.pg_settle)
            b = args.pg.stats(srv.pg_dbs)
            d = pg_delta(a, b)
            srv.pg_idle_rate = {k: d[k] / d["s"] for k in PG_COUNTERS}
            sess["pg_idle_per_s"] = srv.pg_idle_rate
            log(f"[{kind} rep {rep}] idle: {srv.pg_idle_rate['xact_commit']:.1f} commits/s, "
                f"{srv.pg_idle_rate['wal_sync']:.2f} WAL syncs/s")
        for workload, conc in matrix:
            if not srv.alive():
                sess["runs"].append({"workload": workload, "concurrency": conc,
                                     "failed": "server process exited"})
                continue
            log(f"[{kind} rep {rep}] {workload} c={conc}")
            sess["runs"].append(run_workload(srv, workload, conc, args))
    finally:
        sess["alive_at_end"] = srv.alive()
        sess["stop"] = srv.stop()
        sess["peak_rss_bytes"] = srv.peak_rss
        if srv.pg_dbs:
            if ns_thread is not None:
                ns_thread.join(timeout=30)
            sess["db_journal_mode"] = "PostgreSQL"
            sess["db_bytes"] = args.pg.db_bytes(srv.pg_dbs)
            if not args.keep_data:
                for d in srv.pg_dbs:
                    args.pg.drop(d)
        else:
            sess["db_journal_mode"] = sqlite_journal_mode(srv.db)
            sess["db_bytes"] = sum(p.stat().st_size for p in data_dir.glob(f"{kind}.db*"))
        log_tail = (data_dir / "server.log").read_bytes()[-3000:].decode("utf-8", "replace")
        sess["server_log_tail"] = log_tail
        if not args.keep_data:
            for p in data_dir.glob(f"{kind}.db*"):
                p.unlink()
    return sess


# ---- summary -------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x == x]
    return statistics.median(xs) if xs else None


def lat(r: dict) -> dict:
    return r.get("latency") if (r.get("latency") or {}).get("n") else (r.get("latency_all") or {})


def summarize(sessions: list[dict]) -> dict:
    out: dict = {}
    for kind in sorted({s["server"] for s in sessions}):
        ss = [s for s in sessions if s["server"] == kind]
        k = out.setdefault(kind, {"workloads": {}})
        k["ready_system_info_s"] = med([(s.get("ready") or {}).get("system_info_s") for s in ss])
        k["ready_first_start_s"] = med([(s.get("ready") or {}).get("first_start_s") for s in ss])
        k["idle_rss_mb"] = med([s.get("idle_rss_bytes", 0) / 2**20 for s in ss if s.get("idle_rss_bytes")])
        k["peak_rss_mb"] = max([s.get("peak_rss_bytes", 0) / 2**20 for s in ss] or [0]) or None
        k["idle_cpu_util"] = med([s.get("idle_cpu_util") for s in ss])
        k["cpu_pressure_median"] = med([r.get("cpu_pressure_after") for s in ss for r in s["runs"]])
        k["journal_mode"] = sorted({s.get("db_journal_mode", "?") for s in ss})
        k["session_failures"] = [s["failed"] for s in ss if s.get("failed")]
        keys = []
        for s in ss:
            for r in s["runs"]:
                key = f"{r['workload']}/c{r['concurrency']}"
                if key not in keys:
                    keys.append(key)
        for key in keys:
            rs = [r for s in ss for r in s["runs"] if f"{r['workload']}/c{r['concurrency']}" == key]
            ok = [r for r in rs if "failed" not in r]
            k["workloads"][key] = {
                "reps": len(rs),
                "failed_runs": [r["failed"] for r in rs if "failed" in r],
                "throughput_per_s": med([r.get("throughput_per_s") for r in ok]),
                "throughput_overall_per_s": med([r.get("throughput_overall_per_s") for r in ok]),
                # latency of units begun after warm-up; if none completed (overload), of all units
                "latency_includes_warmup": any(not r.get("latency", {}).get("n") for r in ok),
                "p50_ms": med([lat(r)["p50_ms"] for r in ok if lat(r).get("n")]),
                "p95_ms": med([lat(r)["p95_ms"] for r in ok if lat(r).get("n")]),
                "p99_ms": med([lat(r)["p99_ms"] for r in ok if lat(r).get("n")]),
                "server_cpu_per_unit_ms": med([r.get("server_cpu_per_unit_ms") for r in ok]),
                "syncs_per_unit": med([r.get("server_syncs_per_unit") for r in ok]),
                "server_cpu_util": med([r.get("server_cpu_util") for r in ok]),
                "driver_cpu_per_unit_ms": med([r.get("driver_cpu_per_unit_ms") for r in ok]),
                "timer_late_hist_p50_ms": med([(r.get("timer_lateness_history") or {}).get("p50_ms") for r in ok]),
                "timer_late_hist_p99_ms": med([(r.get("timer_lateness_history") or {}).get("p99_ms") for r in ok]),
                "errors": sum(r.get("error_count", 0) for r in ok),
                "check_failures": sum(r.get("check_failures", 0) for r in ok),
                "units_total": sum(r.get("units_total", 0) for r in ok),
                "error_samples": sorted({e for r in ok for e in (r.get("error_samples") or [])})[:10],
                "check_samples": sorted({e for r in ok for e in (r.get("inline_failure_samples") or [])
                                          + (r.get("verify_failure_samples") or [])})[:10],
            }
            if any(r.get("pg_per_unit") for r in ok):
                w = k["workloads"][key]
                w["pg_cpu_per_unit_ms"] = med([r.get("pg_cpu_per_unit_ms") for r in ok])
                for c in PG_COUNTERS:
                    w[f"pg_{c}_per_unit"] = med([(r.get("pg_per_unit") or {}).get(c) for r in ok])
                    w[f"pg_{c}_net_per_unit"] = med([(r.get("pg_net_per_unit") or {}).get(c) for r in ok])
        if any(s.get("pg_idle_per_s") for s in ss):
            for c in PG_COUNTERS:
                k[f"pg_idle_{c}_per_s"] = med([(s.get("pg_idle_per_s") or {}).get(c) for s in ss])
            k["schema_s"] = med([s.get("schema_s") for s in ss])
    return out


def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 10:
            return f"{x:.1f}"
        return f"{x:.{max(nd, 2)}f}" if abs(x) < 1 else f"{x:.{nd + 1}f}"
    return str(x)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.3g}×"


def markdown(meta: dict, summary: dict) -> str:
    kinds = [k for k in ("sundial", "temporal", "mock") if k in summary]
    both = kinds[:2] == ["sundial", "temporal"] and len(kinds) == 2
    L = [f"Run {meta['date']}{' (store: PostgreSQL)' if meta.get('store') == 'postgres' else ''} on {meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']}), "
         f"{meta['machine']['mem_mib']} MiB, kernel {meta['machine']['kernel']}, load average at start "
         f"{meta['machine']['loadavg_at_start']}. fsync probe: "
         f"{fmt((meta.get('fsync') or {}).get('fsync', {}).get('per_s'))} fsync/s, "
         f"{fmt((meta.get('fsync') or {}).get('fdatasync', {}).get('per_s'))} fdatasync/s "
         f"(4 KiB appends). {meta['reps']} repetition(s), medians shown; window {meta['duration_s']} s "
         f"after {meta['warmup_s']} s warm-up; eager activity requested: {meta['eager']}.", ""]
    head = "| metric | " + " | ".join(kinds) + (" | Sundial / Temporal | better |" if both else " |")
    L += [head, "|" + "---|" * (len(kinds) + 1 + (2 if both else 0))]

    def row(name, vals, better):
        cells = [fmt(v) for v in vals]
        extra = f" | {ratio(vals[0], vals[1])} | {better} |" if both else " |"
        L.append(f"| {name} | " + " | ".join(cells) + extra)

    g = lambda k, f: [summary[x].get(f) for x in kinds]  # noqa: E731
    row("spawn → first OK GetSystemInfo (s)", g(None, "ready_system_info_s"), "lower")
    row("spawn → first OK StartWorkflowExecution (s)", g(None, "ready_first_start_s"), "lower")
    row("idle RSS (MiB)", g(None, "idle_rss_mb"), "lower")
    row("peak RSS (MiB)", g(None, "peak_rss_mb"), "lower")
    row("idle CPU (cores)", g(None, "idle_cpu_util"), "lower")
    pgm = meta.get("store") == "postgres"
    if pgm:
        row("schema applied (s; create-database, setup-schema, update-schema ×2)", g(None, "schema_s"), "–")
        row("idle server: PostgreSQL commits/s in its databases", g(None, "pg_idle_xact_commit_per_s"), "lower")
        row("idle server: WAL syncs/s (cluster)", g(None, "pg_idle_wal_sync_per_s"), "lower")
    row("machine CPU pressure during its runs (% some avg10, median; other load)", g(None, "cpu_pressure_median"), "–")
    keys = []
    for k in kinds:
        for key in summary[k]["workloads"]:
            if key not in keys:
                keys.append(key)
    for key in keys:
        w = [summary[k]["workloads"].get(key, {}) for k in kinds]
        unit = {"start": "starts", "signal": "signals"}.get(key.split("/")[0], "workflows")
        row(f"**{key}** throughput ({unit}/s)", [x.get("throughput_per_s") for x in w], "higher")
        row(f"{key} throughput over the whole run incl. warm-up and drain (/s)",
            [x.get("throughput_overall_per_s") for x in w], "higher")
        note = " (all units: none begun after warm-up completed)" if any(x.get("latency_includes_warmup") for x in w) else ""
        row(f"{key} latency p50 (ms){note}", [x.get("p50_ms") for x in w], "lower")
        row(f"{key} latency p95 (ms)", [x.get("p95_ms") for x in w], "lower")
        row(f"{key} latency p99 (ms)", [x.get("p99_ms") for x in w], "lower")
        row(f"{key} server CPU per unit (ms)", [x.get("server_cpu_per_unit_ms") for x in w], "lower")
        row(f"{key} server CPU used (cores)", [x.get("server_cpu_util") for x in w], "–")
        if any(x.get("syncs_per_unit") is not None for x in w):
            row(f"{key} server fsync+fdatasync calls per unit", [x.get("syncs_per_unit") for x in w], "lower")
        if any(x.get("pg_xact_commit_per_unit") is not None for x in w):
            row(f"{key} PostgreSQL CPU per unit (ms, whole cluster)", [x.get("pg_cpu_per_unit_ms") for x in w], "lower")
            row(f"{key} **commits per unit** (pg_stat_database xact_commit, its 2 databases)",
                [x.get("pg_xact_commit_per_unit") for x in w], "lower")
            row(f"{key} commits per unit, less the idle rate", [x.get("pg_xact_commit_net_per_unit") for x in w], "lower")
            row(f"{key} write transactions per unit (xids assigned)", [x.get("pg_next_xid_per_unit") for x in w], "lower")
            row(f"{key} **WAL fsyncs per unit** (pg_stat_wal wal_sync)", [x.get("pg_wal_sync_per_unit") for x in w], "lower")
            row(f"{key} WAL fsyncs per unit, less the idle rate", [x.get("pg_wal_sync_net_per_unit") for x in w], "lower")
            row(f"{key} WAL writes per unit (pg_stat_wal wal_write)", [x.get("pg_wal_write_per_unit") for x in w], "lower")
            row(f"{key} WAL bytes per unit", [x.get("pg_wal_bytes_per_unit") for x in w], "lower")
            row(f"{key} rollbacks per unit", [x.get("pg_xact_rollback_per_unit") for x in w], "lower")
        if key.startswith("timer"):
            row(f"{key} timer fire lateness p50 (ms, from history)", [x.get("timer_late_hist_p50_ms") for x in w], "lower")
            row(f"{key} timer fire lateness p99 (ms, from history)", [x.get("timer_late_hist_p99_ms") for x in w], "lower")
        cf = [x.get("check_failures") for x in w]
        er = [x.get("errors") for x in w]
        fr = [len(x.get("failed_runs") or []) for x in w]
        L.append(f"| {key} history-check failures / RPC errors / failed runs | "
                 + " | ".join(f"{a} / {b} / {c}" for a, b, c in zip(cf, er, fr))
                 + (" | | 0 |" if both else " |"))
    L.append("")
    if pgm:
        pi = meta.get("postgres") or {}
        L.append(f"Store: PostgreSQL {pi.get('version')} on 127.0.0.1 (scripts/postgres.sh; "
                 + ", ".join(f"{a}={b}" for a, b in sorted((pi.get('settings') or {}).items()))
                 + f"), shared by both servers, each session on fresh databases of its own; "
                 f"numHistoryShards {PG_SHARDS} for both; maxConns {PG_MAX_CONNS} per store; one server "
                 "at a time (pg_stat_wal is cluster-wide). Counters are read before each run and "
                 f"{meta.get('pg_settle_s')} s after it (statistics reach pg_stat_* late), divided by "
                 "the units the driver completed in the run (incl. warm-up and drain).")
    else:
        L.append("Journal mode found in each server's database file after the run: "
                 + "; ".join(f"{k}: {', '.join(summary[k]['journal_mode'])}" for k in kinds) + ".")
    for k in kinds:
        for key, w in summary[k]["workloads"].items():
            shown = (w.get("failed_runs", []) + w.get("error_samples", [])[:3] + w.get("check_samples", [])[:3])
            for s in shown:
                L.append(f"- {k} {key}: `{s[:400]}`")
        for s in summary[k]["session_failures"]:
            L.append(f"- {k}: `{s[:500]}`")
    return "\n".join(L) + "\n"


def chart(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("sundial", "temporal", "mock") if k in summary]
    colors = {"sundial": "#d98c1f", "temporal": "#444444", "mock": "#4a7ab5"}
    keys = []
    for k in kinds:
        for key in summary[k]["workloads"]:
            if key not in keys:
                keys.append(key)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    width = 0.8 / max(1, len(kinds))

    def bars(ax, metric, title, log=True, subset=None):
        ks = [k for k in keys if subset is None or k.startswith(subset)]
        for i, kind in enumerate(kinds):
            vals = [summary[kind]["workloads"].get(key, {}).get(metric) or 0 for key in ks]
            ax.bar([x + i * width for x in range(len(ks))], vals, width, label=kind, color=colors[kind])
        ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(ks))])
        ax.set_xticklabels(ks, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        if log and any(summary[k]["workloads"].get(key, {}).get(metric) for k in kinds for key in ks):
            ax.set_yscale("log")
        ax.legend()

    bars(axes[0][0], "throughput_per_s", "throughput (units/s, log)")
    bars(axes[0][1], "p50_ms", "activity workflow latency p50 (ms, log)", subset="activity")
    bars(axes[1][0], "server_cpu_per_unit_ms", "server CPU per unit (ms, log)")
    ax = axes[1][1]
    metrics = [("idle_rss_mb", "idle RSS MiB"), ("peak_rss_mb", "peak RSS MiB"),
               ("ready_system_info_s", "ready s ×100")]
    for i, kind in enumerate(kinds):
        vals = [(summary[kind].get(m) or 0) * (100 if m.endswith("_s") else 1) for m, _ in metrics]
        ax.bar([x + i * width for x in range(len(metrics))], vals, width, label=kind, color=colors[kind])
    ax.set_xticks([x + width * (len(kinds) - 1) / 2 for x in range(len(metrics))])
    ax.set_xticklabels([n for _, n in metrics])
    ax.set_title("footprint (log)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def scrub(obj, repl: list[tuple[str, str]]):
    """Replaces this machine's paths in results (they are committed) with placeholders."""
    if isinstance(obj, str):
        for a, b in repl:
            obj = obj.replace(a, b)
        return obj
    if isinstance(obj, list):
        return [scrub(x, repl) for x in obj]
    if isinstance(obj, dict):
        return {k: scrub(v, repl) for k, v in obj.items()}
    return obj


# ---- main ----------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["sundial", "temporal", "mock"],
                    help="run one server only; `mock` is the driver's in-memory stand-in "
                         "(measures the driver's own ceiling; smoke test without any server)")
    ap.add_argument("--quick", action="store_true", help="smoke run: short windows, small matrix, 1 repetition")
    ap.add_argument("--reps", type=int, help="repetitions per server (default 2, quick 1)")
    ap.add_argument("--duration", type=float, help="measurement window per run, s (default 10, quick 1.5)")
    ap.add_argument("--warmup", type=float, help="warm-up per run, s (default 2, quick 0.5)")
    ap.add_argument("--verify", type=int, help="histories checked per run (default 20, quick 5)")
    ap.add_argument("--workloads", help="comma list of workload/c pairs, e.g. activity/1,activity/32,start/8")
    ap.add_argument("--overload", action="store_true", help="add activity at concurrency 1024")
    ap.add_argument("--no-sdk", action="store_true", help="skip the Python-SDK workload")
    ap.add_argument("--no-eager", dest="eager", action="store_false",
                    help="do not request eager activity dispatch")
    ap.add_argument("--sundial-bin", default=os.environ.get("SUNDIAL_BIN", str(ROOT / "target/dist/sundial")))
    ap.add_argument("--sundial-arg", action="append", default=[], help="extra argument for sundial start-dev")
    ap.add_argument("--temporal-bin", default=os.environ.get("TEMPORAL_BIN", str(Path(sys.executable).parent / "temporal")))
    ap.add_argument("--temporal-pragma", action="append", default=[],
                    help="pass --sqlite-pragma to Temporal (e.g. journal_mode=wal); default: none, as shipped")
    ap.add_argument("--out", help="output directory (default bench/results/runs/<timestamp>)")
    ap.add_argument("--latest", action="store_true",
                    help="also copy results.{json,md,png} to bench/results/latest/ "
                         "(bench/results/postgres/ with --store postgres)")
    ap.add_argument("--no-sync-count", dest="count_syncs", action="store_false",
                    help="do not count the server's fsync/fdatasync calls (perf stat on syscall tracepoints)")
    ap.add_argument("--keep-data", action="store_true", help="keep the database files")
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                    help="sqlite (default): both dev servers on SQLite files; postgres: Temporal Server "
                         "(bench/.bin, scripts/install-temporal-server.sh) and `sundial server start` "
                         "on one throwaway PostgreSQL (scripts/postgres.sh)")
    ap.add_argument("--temporal-server-bin", default=os.environ.get("TEMPORAL_SERVER_BIN",
                                                                    str(BENCH / ".bin" / "temporal-server")),
                    help="--store postgres: Temporal Server binary")
    ap.add_argument("--temporal-sql-tool", default=os.environ.get("TEMPORAL_SQL_TOOL",
                                                                  str(BENCH / ".bin" / "temporal-sql-tool")),
                    help="--store postgres: Temporal's SQL schema tool")
    ap.add_argument("--pg-settle", type=float, default=11.0,
                    help="--store postgres: seconds to wait after each run before reading pg_stat_* "
                         "(idle backends report their statistics within 10 s)")
    args = ap.parse_args()

    args.reps = args.reps or (1 if args.quick else 2)
    args.duration = args.duration or (1.5 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0)
    args.verify = args.verify if args.verify is not None else (5 if args.quick else 20)
    if not (1 <= args.reps <= 20 and 0 < args.duration <= 600):
        ap.error("reps must be 1..20 and duration 0..600 s")

    if args.workloads:
        matrix = []
        for item in args.workloads.split(","):
            w, c = item.split("/")
            matrix.append((w, int(c.lstrip("c"))))
    else:
        matrix = list(QUICK_MATRIX if args.quick else FULL_MATRIX)
        if args.overload:
            matrix += OVERLOAD
    if args.no_sdk or args.only == "mock":
        matrix = [m for m in matrix if m[0] != "sdk"]

    kinds = [args.only] if args.only else ["sundial", "temporal"]
    for path, what in [(DRIVER, "driver"), (FSYNC, "fsync probe")]:
        if not path.exists():
            sys.exit(f"{what} not built ({path}); run scripts/install-bench-deps.sh")
    if "sundial" in kinds and not os.access(args.sundial_bin, os.X_OK):
        sys.exit(f"sundial binary not found at {args.sundial_bin} (build it with scripts/build-dist.sh, "
                 "pass --sundial-bin, or use --only temporal)")
    if "temporal" in kinds and not os.access(args.temporal_bin, os.X_OK):
        sys.exit(f"temporal CLI not found at {args.temporal_bin}; run scripts/install-bench-deps.sh")
    args.pg = None
    if args.store == "postgres":
        if args.only == "mock":
            ap.error("--store postgres needs a real server")
        if not os.access(args.temporal_bin, os.X_OK):
            sys.exit(f"temporal CLI (namespace registration) not found at {args.temporal_bin}; "
                     "run scripts/install-bench-deps.sh")
        if "temporal" in kinds:
            for b in (args.temporal_server_bin, args.temporal_sql_tool):
                if not os.access(b, os.X_OK):
                    sys.exit(f"{b} not found; run scripts/install-temporal-server.sh")
        if not shutil.which("psql"):
            sys.exit("psql not found (Debian package postgresql-client; scripts/postgres.sh install)")
        # Sundial's own fsyncs are none on PostgreSQL: the database's are counted instead.
        args.count_syncs = False

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = Path(args.out) if args.out else BENCH / "results" / "runs" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)

    meta = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "reps": args.reps, "duration_s": args.duration, "warmup_s": args.warmup,
        "verify_per_run": args.verify, "eager": args.eager, "quick": args.quick,
        "matrix": [f"{w}/c{c}" for w, c in matrix],
    }
    try:
        meta["temporal_version"] = subprocess.run([args.temporal_bin, "--version"], capture_output=True,
                                                  text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        meta["temporal_version"] = None
    if "sundial" in kinds:
        try:
            meta["sundial_version"] = subprocess.run([args.sundial_bin, "--version"], capture_output=True,
                                                     text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            meta["sundial_version"] = None
        try:
            meta["sundial_git"] = subprocess.run(["git", "-C", str(Path(args.sundial_bin).resolve().parent),
                                                  "log", "-1", "--format=%h %s"], capture_output=True,
                                                 text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
        binary = Path(args.sundial_bin).resolve()
        meta["sundial_bin"] = str(binary.relative_to(ROOT)) if binary.is_relative_to(ROOT) else binary.name
        # scripts/build-dist.sh leaves the link order it used beside the binary.
        order = binary.parent / "link-order.txt"
        meta["sundial_link_ordered"] = order.exists() and order.stat().st_mtime <= binary.stat().st_mtime

    if args.store == "postgres":
        meta["store"] = "postgres"
        meta["pg_settle_s"] = args.pg_settle
        meta["num_history_shards"] = PG_SHARDS
        if "temporal" in kinds:
            try:
                meta["temporal_server_version"] = subprocess.run(
                    [str(args.temporal_server_bin), "--version"], capture_output=True, text=True,
                    timeout=30).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                meta["temporal_server_version"] = None
        # Outside the repository: scripts/postgres.sh hands the directory to the postgres user.
        pg_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        os.chmod(pg_dir, 0o755)
        args.pg = PgCluster(pg_dir / "pg")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        log(f"starting PostgreSQL in {pg_dir}")
        try:
            args.pg.start()
            meta["postgres"] = {"version": args.pg.version(), "settings": args.pg.settings()}
        except Exception:
            args.pg.stop()
            shutil.rmtree(pg_dir, ignore_errors=True)
            raise
        log(f"PostgreSQL {meta['postgres']['version']} on {args.pg.host}:{args.pg.port}")
    try:
        return run_all(args, kinds, matrix, out_dir, meta)
    finally:
        if args.pg is not None:
            args.pg.stop()
            shutil.rmtree(pg_dir, ignore_errors=True)
            log("PostgreSQL stopped")


def run_all(args, kinds, matrix, out_dir: Path, meta: dict) -> int:
    log("fsync probe")
    (out_dir / "tmp").mkdir(exist_ok=True)
    fs, _ = run_json([str(FSYNC), "-dir", str(out_dir / "tmp"),
                      "-duration", "0.5s" if args.quick else "2s"], timeout=60)
    meta["fsync"] = fs
    if fs:
        log(f"fsync {fs['fsync']['per_s']:.0f}/s, fdatasync {fs['fdatasync']['per_s']:.0f}/s")

    sessions = []
    for rep in range(1, args.reps + 1):
        order = kinds if rep % 2 == 1 else list(reversed(kinds))
        for kind in order:
            sessions.append(session(kind, rep, args, out_dir, matrix))
            # write partial results as we go
            (out_dir / "results.json").write_text(json.dumps({"meta": meta, "sessions": sessions}, indent=1))

    repl = [(str(args.sundial_bin), meta.get("sundial_bin") or "sundial"), (str(out_dir.resolve()), "<run-dir>"), (str(out_dir), "<run-dir>"), (str(ROOT), "<repo>"),
            (str(Path.home()), "~")]
    sessions = scrub(sessions, repl)
    meta = scrub(meta, repl)
    summary = summarize(sessions)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "summary": summary, "sessions": sessions},
                                                     indent=1))
    md = markdown(meta, summary)
    (out_dir / "results.md").write_text(md)
    try:
        chart(summary, out_dir / "results.png")
    except Exception as e:  # noqa: BLE001 — the numbers matter more than the picture
        log("chart failed:", e)
    if not args.keep_data:
        shutil.rmtree(out_dir / "tmp", ignore_errors=True)
    if args.latest:
        latest = BENCH / "results" / ("postgres" if args.store == "postgres" else "latest")
        latest.mkdir(parents=True, exist_ok=True)
        for n in ("results.json", "results.md", "results.png"):
            if (out_dir / n).exists():
                shutil.copy(out_dir / n, latest / n)
    print(md)
    log(f"results in {out_dir}")
    bad = sum(w["check_failures"] for k in summary.values() for w in k["workloads"].values())
    return 1 if bad or any(s.get("failed") for s in sessions) else 0


if __name__ == "__main__":
    sys.exit(main())
