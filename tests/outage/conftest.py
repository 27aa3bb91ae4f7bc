import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "sdk", "python"))

import harness  # noqa: E402


def pytest_sessionfinish(session, exitstatus):
    session.config._sundial_exitstatus = exitstatus


def pytest_unconfigure(config):
    harness.exit_hard_at_unconfigure(config)


def pytest_report_header(config):
    return "outage test: sundial on PostgreSQL, the database stopped under load"
