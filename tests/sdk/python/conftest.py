import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

EXTRA_NAMESPACE = "sdk-py-extra"
TASK_QUEUE = "py-e2e"


def pytest_sessionfinish(session, exitstatus):
    session.config._sundial_exitstatus = exitstatus


def pytest_unconfigure(config):
    harness.exit_hard_at_unconfigure(config)


def pytest_report_header(config):
    return f"server under test: {harness.target_name()}"


@pytest.fixture(scope="session")
def server():
    s = harness.Server(namespaces=[EXTRA_NAMESPACE]).start()
    yield s
    s.cleanup()


class Env:
    """Client + one shared worker (task queue `py-e2e`) running in a background loop."""

    def __init__(self, server):
        from temporalio.client import Client
        from temporalio.worker import UnsandboxedWorkflowRunner, Worker

        import wf_defs

        self.server = server
        self.lt = harness.LoopThread()
        self.task_queue = TASK_QUEUE

        async def setup():
            from header_interceptor import HeaderInterceptor

            self.client = await Client.connect(server.address, namespace="default")
            self.hclient = await Client.connect(
                server.address, namespace="default", interceptors=[HeaderInterceptor()]
            )
            self.worker = Worker(
                self.client, task_queue=TASK_QUEUE, workflows=wf_defs.ALL_WORKFLOWS,
                activities=wf_defs.ALL_ACTIVITIES, workflow_runner=UnsandboxedWorkflowRunner(),
            )
            import asyncio
            self.worker_task = asyncio.ensure_future(self.worker.run())

        self.lt.run(setup())

    def run(self, coro, timeout=90):
        return self.lt.run(coro, timeout)

    def close(self):
        async def down():
            await self.worker.shutdown()
        try:
            self.lt.run(down(), 30)
        finally:
            self.lt.close()


@pytest.fixture(scope="session")
def env(server):
    e = Env(server)
    yield e
    e.close()


@pytest.fixture
def wid(request):
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
