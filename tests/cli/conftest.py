import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))

import harness  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    session.config._sundial_exitstatus = exitstatus


def pytest_unconfigure(config):
    harness.exit_hard_at_unconfigure(config)


def pytest_report_header(config):
    return f"CLI smoke test against: {harness.target_name()}"


@pytest.fixture(scope="session")
def server():
    s = harness.Server().start()
    yield s
    s.cleanup()


@pytest.fixture(scope="session")
def worker(server):
    """A Python SDK worker (task queue cli-tq) in a background loop."""
    from temporalio.client import Client
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker
    import asyncio
    import wf_defs

    lt = harness.LoopThread()

    async def setup():
        client = await Client.connect(server.address)
        w = Worker(client, task_queue="cli-tq", workflows=wf_defs.ALL_WORKFLOWS, activities=wf_defs.ALL_ACTIVITIES,
                   workflow_runner=UnsandboxedWorkflowRunner())
        return w, asyncio.ensure_future(w.run())

    w, _ = lt.run(setup())
    yield w
    try:
        lt.run(w.shutdown(), 30)
    finally:
        lt.close()
