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
    return f"differential: temporal (oracle) vs {harness.target_name()}"


class Side:
    def __init__(self, label, server):
        from temporalio.client import Client
        self.label = label
        self.server = server
        self.lt = harness.LoopThread()
        self.client = self.lt.run(Client.connect(server.address, namespace="default"))


@pytest.fixture(scope="session")
def sides():
    oracle = harness.Server(target="temporal").start()
    target = harness.Server(target=harness.target_name()).start()
    o, t = Side("temporal", oracle), Side(harness.target_name(), target)
    yield o, t
    for s in (o, t):
        s.lt.close()
        s.server.cleanup()
