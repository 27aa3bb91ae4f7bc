#!/usr/bin/env python3
"""Scale benchmark: one Sundial node with many open workflows (see bench/scale/README.md).

For each store (sqlite, postgres) one database is grown step by step (a small baseline, then
each size of --sizes). At each step the runner
  1. parks the runs that take the database to that size (`bench-driver park`: half wait on a
     1-24 h timer, half on a signal) and times it;
  2. reads the server's RSS (VmRSS, VmHWM) and the database size on disk;
  3. kill -9s the server, starts it again on the same database and times spawn -> serving
     (`bench-driver ready -since`), then reads RSS again (at once and after 5 s idle);
  4. runs `bench-driver probe` (signal latency to random parked runs, then timer lateness and
     start latency at a steady start rate) and reads RSS after it.
Results go to OUT/results.json and OUT/results.md after every step (partial runs keep what
they measured). With --work-dir and --keep-data a later invocation continues a grown
database (e.g. --sizes 1000000 after a run that stopped at 100000).

Traffic is to 127.0.0.1 only; every wait is bounded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SCALE = Path(__file__).resolve().parent
BENCH = SCALE.parent
ROOT = BENCH.parent
DRIVER = BENCH / "driver" / "bench-driver"
POSTGRES_SH = ROOT / "scripts" / "postgres.sh"
MIB = 1024 * 1024


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict:
    """VmRSS, VmHWM, RssAnon, RssFile (KiB) and Threads of one process."""
    out = {}
    try:
        for line in open(f"/proc/{pid}/status"):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    except OSError:
        pass
    return out


def smaps_rollup(pid: int) -> dict:
    out = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_pressure() -> dict | None:
    """/proc/pressure/cpu "some": share of time runnable tasks waited for a CPU (other work)."""
    try:
        for line in open("/proc/pressure/cpu"):
            if line.startswith("some"):
                kv = dict(p.split("=") for p in line.split()[1:])
                return {"avg10": float(kv["avg10"]), "avg60": float(kv["avg60"])}
    except (OSError, KeyError, ValueError):
        pass
    return None


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def busy_others(exclude: set[int], n: int = 5) -> list[str]:
    """The processes (not ours) that used the most CPU in the last second: who shared the machine."""
    def snap():
        d = {}
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) not in exclude:
                try:
                    with open(f"/proc/{p}/stat") as f:
                        s = f.read()
                    name = s[s.index("(") + 1:s.rindex(")")]
                    fields = s.rsplit(")", 1)[1].split()
                    d[int(p)] = (name, int(fields[11]) + int(fields[12]))
                except (OSError, ValueError, IndexError):
                    pass
        return d
    a = snap()
    time.sleep(1.0)
    b = snap()
    tck = os.sysconf("SC_CLK_TCK")
    use = sorted(((b[p][1] - a[p][1], b[p][0]) for p in b if p in a), reverse=True)
    return [f"{name} {100 * t / tck:.0f}%" for t, name in use[:n] if t > 0]


def machine_info() -> dict:
    model, mem = "", 0
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // 1024
    return {"cpu_model": model, "cpus": os.cpu_count(), "mem_mib": mem, "kernel": platform.release()}


def run_json(argv: list[str], timeout: float, stderr_path: Path | None = None) -> dict:
    err = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                             timeout=timeout)
    finally:
        if stderr_path:
            err.close()
    try:
        res = json.loads(out.stdout.decode() or "{}")
    except json.JSONDecodeError:
        res = {"raw_stdout": out.stdout.decode(errors="replace")[-2000:]}
    res["exit_code"] = out.returncode
    return res


def du_bytes(paths: list[Path]) -> int:
    """Allocated bytes (st_blocks) of files and directory trees."""
    total = 0
    for p in paths:
        if p.is_file():
            total += p.stat().st_blocks * 512
        elif p.is_dir():
            for dp, _, files in os.walk(p):
                for f in files:
                    try:
                        total += os.lstat(os.path.join(dp, f)).st_blocks * 512
                    except OSError:
                        pass
    return total


# ---- stores --------------------------------------------------------------------------

class Store:
    """One Sundial server and its database, started and killed as the steps need."""

    def __init__(self, kind: str, work: Path, sundial: str, port: int):
        self.kind, self.work, self.sundial, self.port = kind, work, sundial, port
        self.proc: subprocess.Popen | None = None
        self.log_path = work / "server.log"
        self.pg: dict | None = None
        self._sampler: threading.Thread | None = None
        self.peak_sampled_kib = 0

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    # database
    def prepare(self):
        self.work.mkdir(parents=True, exist_ok=True)
        if self.kind == "sqlite":
            self.db = self.work / "scale.db"
            return
        pgdir = self.work / "pg"
        os.chmod(self.work, 0o755)  # postgres.sh runs PostgreSQL as `postgres` when root
        if (pgdir / "port").exists():
            subprocess.run(["bash", str(POSTGRES_SH), "resume", str(pgdir)], check=True, timeout=120)
            port = (pgdir / "port").read_text().strip()
            self.pg = {"host": "127.0.0.1", "port": port, "user": "sundial", "password": "sundial-test", "dir": pgdir}
        else:
            out = subprocess.run(["bash", str(POSTGRES_SH), "start", str(pgdir)], check=True, timeout=600,
                                 stdout=subprocess.PIPE).stdout.decode()
            env = dict(kv.split("=", 1) for kv in out.replace("export ", "").split())
            self.pg = {"host": env["SUNDIAL_PG_HOST"], "port": env["SUNDIAL_PG_PORT"],
                       "user": env["SUNDIAL_PG_USER"], "password": env["SUNDIAL_PG_PASSWORD"], "dir": pgdir}
        pg = self.pg
        for db, schema in (("temporal", "postgresql/v12/temporal"), ("temporal_visibility", "postgresql/v12/visibility")):
            base = [self.sundial, "schema", "--plugin", "postgres12", "--ep", pg["host"], "-p", pg["port"],
                    "-u", pg["user"], "--pw", pg["password"], "--db", db, "-q"]
            for step in (["create-database"], ["setup-schema", "-v", "0.0"], ["update-schema", "--schema-name", schema]):
                subprocess.run(base + step, check=True, timeout=300, stdout=subprocess.DEVNULL)
        stores = ""
        for name, db in (("default", "temporal"), ("visibility", "temporal_visibility")):
            stores += (f"    {name}:\n      sql:\n        pluginName: postgres12\n        databaseName: {db}\n"
                       f"        connectAddr: \"{pg['host']}:{pg['port']}\"\n        connectProtocol: tcp\n"
                       f"        user: {pg['user']}\n        password: {pg['password']}\n"
                       f"        maxConns: 20\n        maxConnLifetime: 1h\n")
        self.config = self.work / "config.yaml"
        self.config.write_text(
            f"log:\n  stdout: true\n  level: info\npersistence:\n  defaultStore: default\n"
            f"  visibilityStore: visibility\n  numHistoryShards: 4\n  datastores:\n{stores}"
            f"services:\n  frontend:\n    rpc:\n      grpcPort: {self.port}\n      bindOnIP: 127.0.0.1\n"
            f"clusterMetadata:\n  enableGlobalNamespace: false\n  failoverVersionIncrement: 10\n"
            f"  masterClusterName: active\n  currentClusterName: active\n  clusterInformation:\n"
            f"    active:\n      enabled: true\n      initialFailoverVersion: 1\n      rpcName: frontend\n"
            f"      rpcAddress: \"127.0.0.1:{self.port}\"\n")

    def db_size(self) -> int:
        if self.kind == "sqlite":
            return du_bytes([self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-shm")])
        return du_bytes([self.pg["dir"] / "data"])

    def teardown(self, keep: bool):
        self.kill()
        if self.pg:
            subprocess.run(["bash", str(POSTGRES_SH), "pause" if keep else "stop", str(self.pg["dir"])],
                           timeout=120, check=False)
        if not keep:
            for p in (self.work / "scale.db", self.work / "scale.db-wal", self.work / "scale.db-shm"):
                p.unlink(missing_ok=True)
            if self.pg:
                shutil.rmtree(self.pg["dir"], ignore_errors=True)

    # server
    def argv(self) -> list[str]:
        if self.kind == "sqlite":
            return [self.sundial, "server", "start-dev", "--port", str(self.port), "--db-filename", str(self.db)]
        return [self.sundial, "server", "start", "--config-file", str(self.config)]

    def spawn(self) -> int:
        """Starts the server; returns the spawn time in unix nanoseconds."""
        out = open(self.log_path, "ab")
        out.write(f"\n==== spawn {dt.datetime.now(dt.timezone.utc).isoformat()} ====\n".encode())
        out.flush()
        t = time.time_ns()
        self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, process_group=0)
        out.close()
        self.peak_sampled_kib = 0
        self._sampler = threading.Thread(target=self._sample, args=(self.proc,), daemon=True)
        self._sampler.start()
        return t

    def _sample(self, proc):
        while proc.poll() is None:
            self.peak_sampled_kib = max(self.peak_sampled_kib, proc_status(proc.pid).get("VmRSS", 0))
            time.sleep(0.25)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9 and reap (the process is gone, its files unlocked, when this returns)."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def mem(self) -> dict:
        st = proc_status(self.proc.pid) if self.alive() else {}
        return {"rss_mib": st.get("VmRSS", 0) / 1024, "hwm_mib": st.get("VmHWM", 0) / 1024,
                "anon_mib": st.get("RssAnon", 0) / 1024, "file_mib": st.get("RssFile", 0) / 1024,
                "threads": st.get("Threads", 0)}

    def ready(self, since: int, timeout: float = 120) -> dict:
        r = run_json([str(DRIVER), "ready", "-addr", self.addr, "-since", str(since), "-timeout", f"{int(timeout)}s"],
                     timeout=timeout + 30)
        return r

    def start_first(self):
        """First start on this database (and namespace `default` for `server start`)."""
        since = self.spawn()
        if self.kind == "postgres":
            deadline = time.monotonic() + 120
            while True:
                if not self.alive():
                    raise RuntimeError(f"server exited; see {self.log_path}")
                r = subprocess.run([str(DRIVER), "namespace", "-addr", self.addr, "-name", "default"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("could not register namespace default")
                time.sleep(0.3)
        r = self.ready(since)
        if r.get("exit_code") != 0:
            raise RuntimeError(f"server not ready: {r}; see {self.log_path}")
        return r

    def log_counts(self) -> dict:
        c = {"WARN": 0, "ERROR": 0}
        samples = []
        try:
            for line in open(self.log_path, errors="replace"):
                for k in c:
                    if f" {k} " in line or f"m {k}" in line or f"{k}\x1b" in line:
                        c[k] += 1
                        if len(samples) < 10:
                            samples.append(line.strip()[:400])
        except OSError:
            pass
        c["samples"] = samples
        return c


# ---- one step ------------------------------------------------------------------------

def step(store: Store, a, parked: int, target: int, label: str, logs: Path) -> dict:
    s: dict = {"label": label, "open_runs": target, "store": store.kind,
               "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    pid = store.proc.pid
    # 1. park
    cpu0 = cpu_seconds(pid)
    n = target - parked
    log(f"{store.kind}: parking {n} runs ({parked} -> {target})")
    t = time.monotonic()
    park = run_json([str(DRIVER), "park", "-addr", store.addr, "-from", str(parked), "-count", str(n),
                     "-concurrency", str(a.park_concurrency), "-pollers", str(a.park_pollers),
                     "-timeout", f"{int(a.park_timeout)}s"],
                    timeout=a.park_timeout + 120, stderr_path=logs / f"park-{target}.log") if n > 0 else {}
    s["park_wall_s"] = time.monotonic() - t
    s["park"] = park
    s["park_rate_per_s"] = park.get("rate_per_s")
    s["server_cpu_park_s"] = cpu_seconds(pid) - cpu0
    s["cpu_pressure_park"] = cpu_pressure()
    time.sleep(2)
    s["mem_after_park"] = store.mem()
    s["mem_after_park"]["peak_sampled_mib"] = store.peak_sampled_kib / 1024
    s["smaps_after_park"] = smaps_rollup(pid)
    s["db_bytes"] = store.db_size()
    if store.kind == "sqlite":
        s["wal_bytes_at_kill"] = du_bytes([Path(f"{store.db}-wal")])
    else:
        s["wal_bytes_at_kill"] = du_bytes([store.pg["dir"] / "data" / "pg_wal"])
    log(f"{store.kind}: parked {park.get('parked')} at {park.get('rate_per_s') or 0:.0f}/s; "
        f"RSS {s['mem_after_park']['rss_mib']:.0f} MiB (HWM {s['mem_after_park']['hwm_mib']:.0f}); "
        f"db {s['db_bytes'] / MIB:.0f} MiB")
    if n > 0 and park.get("parked", 0) < n:
        # Stopped short (-park-timeout or errors): measure what is there.
        s["park_incomplete"] = True
        target = parked + park.get("parked", 0)
        s["open_runs"] = target
    # 2. kill -9, restart
    store.kill()
    since = store.spawn()
    s["ready"] = store.ready(since)
    pid = store.proc.pid
    s["mem_after_restart"] = store.mem()
    time.sleep(5)
    s["mem_after_restart_5s"] = store.mem()
    s["smaps_after_restart_5s"] = smaps_rollup(pid)
    log(f"{store.kind}: restart -> GetSystemInfo {s['ready'].get('system_info_s', 0):.3f}s, "
        f"first start {s['ready'].get('first_start_s', 0):.3f}s; RSS {s['mem_after_restart']['rss_mib']:.0f} MiB, "
        f"5 s later {s['mem_after_restart_5s']['rss_mib']:.0f} MiB")
    if s["ready"].get("exit_code") != 0:
        raise RuntimeError(f"not serving after restart: {s['ready']}")
    # 3. probe
    s["others_before_probe"] = busy_others({pid, os.getpid()})
    cpu0 = cpu_seconds(pid)
    s["probe"] = run_json([str(DRIVER), "probe", "-addr", store.addr, "-parked", str(target),
                           "-signals", str(a.signals), "-signal-concurrency", str(a.signal_concurrency),
                           "-timer-rate", str(a.timer_rate), "-timer-duration", f"{a.timer_duration}s",
                           "-timeout", "15m"], timeout=1000, stderr_path=logs / f"probe-{target}.log")
    s["server_cpu_probe_s"] = cpu_seconds(pid) - cpu0
    s["cpu_pressure_probe"] = cpu_pressure()
    time.sleep(2)
    s["mem_after_probe"] = store.mem()
    s["mem_after_probe"]["peak_sampled_mib"] = store.peak_sampled_kib / 1024
    p = s["probe"]
    log(f"{store.kind}: probe signal p50/p99 {p.get('signal', {}).get('latency', {}).get('p50_ms')}/"
        f"{p.get('signal', {}).get('latency', {}).get('p99_ms')} ms; timer lateness p99 "
        f"{p.get('timer', {}).get('lateness_history', {}).get('p99_ms')} ms; start p99 "
        f"{p.get('timer', {}).get('start_latency', {}).get('p99_ms')} ms; RSS {s['mem_after_probe']['rss_mib']:.0f} MiB")
    return s


# ---- output --------------------------------------------------------------------------

def fmt(v, spec=".1f", none="–"):
    return none if v is None else format(v, spec)


def table(results: dict) -> str:
    rows = ["| store | open runs | park rate (runs/s) | restart → serving (s) | RSS after park / restart / +5 s / probe (MiB) | "
            "signal p50 / p99 (ms) | signal p99 ÷ empty | timer lateness p50 / p99 (ms) | start p50 / p99 (ms) | errors | DB size (MiB) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, st in results.get("stores", {}).items():
        steps = st.get("steps", [])
        def base_p99(x):
            # The empty step of the same session (same --tag), else the untagged one.
            tag = x["label"].partition("@")[2]
            b = next((y for y in steps if y["label"] == ("empty@" + tag if tag else "empty")), None) \
                or next((y for y in steps if y["label"] == "empty"), None)
            return b and b["probe"].get("signal", {}).get("latency", {}).get("p99_ms")
        for x in steps:
            sig = x.get("probe", {}).get("signal", {}).get("latency", {})
            tim = x.get("probe", {}).get("timer", {})
            lat, stl = tim.get("lateness_history", {}), tim.get("start_latency", {})
            rd = x.get("ready", {})
            b99 = base_p99(x)
            ratio = (sig.get("p99_ms") / b99) if (b99 and sig.get("p99_ms")) else None
            errs = (x.get("park", {}).get("error_count", 0) or 0) + (x.get("probe", {}).get("error_count", 0) or 0)
            m = lambda k: fmt(x.get(k, {}).get("rss_mib"), ".0f")
            label = f"{x['open_runs']:,}" + ("" if x["label"] == "size" else f" ({x['label']})")
            rows.append(
                f"| {kind} | {label} | {fmt(x.get('park_rate_per_s'), ',.0f')} | "
                f"{fmt(rd.get('first_start_s'), '.2f')} ({fmt(rd.get('system_info_s'), '.2f')}) | "
                f"{m('mem_after_park')} / {m('mem_after_restart')} / {m('mem_after_restart_5s')} / {m('mem_after_probe')} | "
                f"{fmt(sig.get('p50_ms'), '.2f')} / {fmt(sig.get('p99_ms'), '.1f')} | {fmt(ratio, '.2f')} | "
                f"{fmt(lat.get('p50_ms'), '.0f')} / {fmt(lat.get('p99_ms'), '.0f')} | "
                f"{fmt(stl.get('p50_ms'), '.1f')} / {fmt(stl.get('p99_ms'), '.0f')} | {errs} | "
                f"{fmt(x.get('db_bytes', 0) / MIB, ',.0f')} |")
    return "\n".join(rows)


def write(results: dict, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    md = [f"# Scale benchmark results\n", f"Run {results.get('started_utc')} – {results.get('updated_utc')}; "
          f"machine: {results['machine'].get('cpus')} CPU {results['machine'].get('cpu_model')}, "
          f"{results['machine'].get('mem_mib')} MiB, kernel {results['machine'].get('kernel')}. "
          f"Settings: {json.dumps(results.get('settings'))}.\n", table(results), "",
          "restart → serving: spawn to the first OK StartWorkflowExecution (in brackets: to the first OK GetSystemInfo). "
          "Signal p99 ÷ empty: against the same store's `empty` row of the same session (label suffix). "
          "`reprobe`: a kept database restarted and probed again, no parking (RSS after park is then the fresh "
          "process's). Errors: failed RPCs in park + probe.", ""]
    for kind, st in results.get("stores", {}).items():
        for x in st.get("steps", []):
            pr = x.get("probe", {})
            md.append(f"- {kind} {x['open_runs']:,} {x['label']}: CPU pressure during probe {x.get('cpu_pressure_probe')}, "
                      f"other busy processes before probe: {', '.join(x.get('others_before_probe', [])) or 'none'}; "
                      f"timer runs started {pr.get('timer', {}).get('started')} at "
                      f"{fmt(pr.get('timer', {}).get('achieved_start_rate_per_s'), '.0f')}/s, "
                      f"starts behind schedule >50 ms: {pr.get('timer', {}).get('starts_behind_schedule_over_50ms')}, "
                      f"not completed: {pr.get('timer', {}).get('not_completed')}; server log WARN/ERROR so far: "
                      f"{x.get('log_counts', {}).get('WARN')}/{x.get('log_counts', {}).get('ERROR')}")
            for e in (x.get("park", {}).get("error_samples") or [])[:3] + (pr.get("error_samples") or [])[:3]:
                md.append(f"  - error: `{e}`")
    (out / "results.md").write_text("\n".join(md) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="open-run counts, ascending")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--sundial-bin", default=os.environ.get("SUNDIAL_BIN", str(ROOT / "target" / "release" / "sundial")))
    ap.add_argument("--baseline", type=int, default=1000,
                    help="runs parked for the `empty` step (signal targets; 0 skips the step)")
    ap.add_argument("--signals", type=int, default=5000)
    ap.add_argument("--signal-concurrency", type=int, default=8)
    ap.add_argument("--timer-rate", type=float, default=1000)
    ap.add_argument("--timer-duration", type=int, default=10, help="seconds of timed starts")
    ap.add_argument("--park-concurrency", type=int, default=64)
    ap.add_argument("--park-pollers", type=int, default=32)
    ap.add_argument("--park-timeout", type=float, default=7200, help="bound on one park invocation (s)")
    ap.add_argument("--work-dir", help="databases and logs (default: a new temporary directory)")
    ap.add_argument("--keep-data", action="store_true", help="keep the databases for a later run to continue")
    ap.add_argument("--out", default=str(SCALE / "results"), help="results.json and results.md go here")
    ap.add_argument("--merge", action="store_true", help="keep the other stores' (and smaller) steps of OUT/results.json")
    ap.add_argument("--reprobe", action="store_true",
                    help="with a kept database already at the largest size: restart and probe it again (no parking)")
    ap.add_argument("--tag", default="", help="appended to the step labels (e.g. @idle), to keep several sessions apart")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",") if x]
    if sizes != sorted(sizes):
        sys.exit("--sizes must be ascending")
    if not DRIVER.exists():
        sys.exit(f"missing {DRIVER}: run scripts/install-bench-deps.sh")
    if not os.access(a.sundial_bin, os.X_OK):
        sys.exit(f"no Sundial binary at {a.sundial_bin} (--sundial-bin or SUNDIAL_BIN)")
    out = Path(a.out)
    work = Path(a.work_dir) if a.work_dir else Path(tempfile.mkdtemp(prefix="sundial-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {"started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), "stores": {}}
    if a.merge and (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())
        results["stores"] = old.get("stores", {})
        results["started_utc"] = old.get("started_utc", results["started_utc"])
    results["settings"] = {k: getattr(a, k) for k in ("signals", "signal_concurrency", "timer_rate", "timer_duration",
                                                     "park_concurrency", "park_pollers", "baseline")}
    results["sundial_bin_sha"] = subprocess.run(["sha256sum", a.sundial_bin], stdout=subprocess.PIPE).stdout.decode()[:16]
    results["git_head"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                         stdout=subprocess.PIPE).stdout.decode().strip()
    status = 0
    for kind in a.stores.split(","):
        sw = work / kind
        sw.mkdir(parents=True, exist_ok=True)
        state_path = sw / "state.json"
        state = json.loads(state_path.read_text()) if state_path.exists() else {"parked": 0}
        store = Store(kind, sw, a.sundial_bin, free_port())
        entry = results["stores"].setdefault(kind, {"steps": []})
        try:
            store.prepare()
            store.start_first()
            plan = []
            if state["parked"] == 0 and a.baseline > 0:
                plan.append(("empty", a.baseline))
            plan += [("size", n) for n in sizes if n > state["parked"]]
            if a.reprobe and state["parked"] > 0 and not plan:
                plan.append(("reprobe", state["parked"]))
            plan = [(label + a.tag, n) for label, n in plan]
            for label, target in plan:
                s = step(store, a, state["parked"], target, label, sw)
                s["log_counts"] = store.log_counts()
                state["parked"] = target if not s.get("park_incomplete") else state["parked"] + s["park"].get("parked", 0)
                state_path.write_text(json.dumps(state))
                entry["steps"] = [x for x in entry["steps"]
                                  if (x["label"], x["open_runs"]) != (s["label"], s["open_runs"])] + [s]
                entry["steps"].sort(key=lambda x: (x["open_runs"], x["label"]))
                results["updated_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                write(results, out)
                if s.get("park_incomplete"):
                    log(f"{kind}: parking stopped short; not going further")
                    status = 1
                    break
        except Exception as e:  # noqa: BLE001 - record and go on with the next store
            log(f"{kind}: failed: {e!r}")
            entry["failure"] = repr(e)
            status = 1
        finally:
            tail = store.log_path.read_text(errors="replace")[-3000:] if store.log_path.exists() else ""
            entry["log_tail"] = re.sub(r"\x1b\[[0-9;]*m", "", tail).replace(str(work), "<work-dir>")
            store.teardown(keep=a.keep_data)
            if not a.keep_data:
                state_path.unlink(missing_ok=True)
            results["updated_utc"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            write(results, out)
    print(table(results))
    sys.exit(status)


if __name__ == "__main__":
    main()
