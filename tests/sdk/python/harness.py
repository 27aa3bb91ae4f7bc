"""Shared harness for the Python-driven end-to-end suites.

Starts the server under test on a free loopback port and waits until GetSystemInfo answers.

Environment:
  SUNDIAL_TEST_TARGET  "sundial" (default) or "temporal" (Temporal's dev server, the oracle)
  SUNDIAL_BIN          path of the sundial binary (default <repo>/target/release/sundial)
  TEMPORAL_BIN         path of the temporal CLI (default <repo>/.venv/bin/temporal, else PATH)
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parents[3]


def target_name() -> str:
    return os.environ.get("SUNDIAL_TEST_TARGET", "sundial").strip() or "sundial"


def temporal_cli() -> str:
    env = os.environ.get("TEMPORAL_BIN")
    if env:
        return env
    cand = REPO_ROOT / ".venv" / "bin" / "temporal"
    if cand.exists():
        return str(cand)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("temporal CLI not found; run scripts/install-test-deps.sh")
    return found


def sundial_bin() -> str:
    env = os.environ.get("SUNDIAL_BIN")
    p = Path(env) if env else REPO_ROOT / "target" / "release" / "sundial"
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not p.exists():
        raise RuntimeError(f"sundial binary not found at {p}; build it or set SUNDIAL_BIN")
    return str(p)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _probe(addr: str, timeout: float) -> bool:
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
    from temporalio.service import ConnectConfig, ServiceClient

    try:
        sc = await asyncio.wait_for(ServiceClient.connect(ConnectConfig(target_host=addr)), timeout)
        await sc.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=__import__("datetime").timedelta(seconds=timeout))
        return True
    except Exception:
        return False


class Server:
    """One server process (sundial or temporal) on 127.0.0.1:port with a durable file."""

    def __init__(
        self,
        target: Optional[str] = None,
        db_file: Optional[str] = None,
        namespaces: Sequence[str] = (),
        port: Optional[int] = None,
        log_path: Optional[str] = None,
    ):
        self.target = target or target_name()
        self._tmp = None
        if db_file is None:
            self._tmp = tempfile.mkdtemp(prefix="sundial-e2e-")
            db_file = os.path.join(self._tmp, "server.db")
        self.db_file = db_file
        self.namespaces = list(namespaces)
        self.port = port or free_port()
        self.log_path = log_path or (db_file + f".{self.target}.log")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.target == "temporal":
            cmd = [
                temporal_cli(), "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(self.port),
                "--db-filename", self.db_file, "--log-level", "error",
                # Temporal rejects upserts of unregistered search attributes; Sundial (Tier 1)
                # is expected to accept these names without registration.
                "--search-attribute", "CustomKeywordField=Keyword",
                "--search-attribute", "CustomIntField=Int",
            ]
        elif self.target == "sundial":
            cmd = [sundial_bin(), "server", "start-dev", "--port", str(self.port),
                   "--db-filename", self.db_file]
        else:
            raise RuntimeError(f"unknown SUNDIAL_TEST_TARGET {self.target!r}")
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        return cmd

    def start(self, timeout: float = 60.0) -> "Server":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.target} server exited with {self.proc.returncode}; log:\n{self.tail_log()}"
                )
            if asyncio.run(_probe(self.address, 2.0)):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.target} server not ready within {timeout}s; log:\n{self.tail_log()}")

    def tail_log(self, n: int = 4000) -> str:
        try:
            return Path(self.log_path).read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the whole process group (the temporal CLI may fork)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill9()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._tmp and not os.environ.get("SUNDIAL_KEEP_TMP"):
            shutil.rmtree(self._tmp, ignore_errors=True)


def wait_namespace_settle() -> None:
    """Temporal's dev server takes about a second before a new namespace accepts calls."""
    time.sleep(1.5 if target_name() == "temporal" else 0.1)


class LoopThread:
    """An asyncio loop in a background thread, so sync pytest tests can share one worker."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 120.0):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def exit_hard_at_unconfigure(config) -> None:
    """Work around Python SDK processes that sometimes abort at interpreter exit: once pytest has
    printed its summary, leave with the session's exit status without running finalizers."""
    import sys

    status = getattr(config, "_sundial_exitstatus", None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))
