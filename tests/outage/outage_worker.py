"""Worker process for the outage tests: `python outage_worker.py ADDRESS TASK_QUEUE [--no-cache]`
(--no-cache: no workflow cache, hence no sticky queue)."""
import asyncio
import os
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.service import RetryConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

# Calls made while the database is down are retried for longer than the outage lasts.
# The activities' start-to-close timeout (SUNDIAL_OUTAGE_ACTIVITY_TIMEOUT seconds, default 10).
ACTIVITY_TIMEOUT = timedelta(seconds=float(os.environ.get("SUNDIAL_OUTAGE_ACTIVITY_TIMEOUT", "10")))
RETRY = RetryConfig(initial_interval_millis=200, max_interval_millis=2000,
                    max_elapsed_time_millis=90_000, max_retries=200)


@activity.defn
async def mix(i: int, step: int) -> int:
    return (i * 31 + step * 7) % 1009


@workflow.defn
class OutageWorkflow:
    @workflow.run
    async def run(self, i: int) -> str:
        opts = dict(start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                             maximum_interval=timedelta(seconds=2)))
        a = await workflow.execute_activity(mix, args=[i, 1], **opts)
        await workflow.sleep(0.5 + (i % 4) * 0.5)
        b = await workflow.execute_activity(mix, args=[i, 2], **opts)
        return f"{i}:{a}:{b}"


@workflow.defn
class ChildWorkflow:
    """Waits for the signal `go` (when `wait`), then answers."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, i: int, wait: bool) -> str:
        if wait:
            await workflow.wait_condition(lambda: self.go)
        return f"child {i}"


@workflow.defn
class ParentWorkflow:
    """Starts ChildWorkflow (id: the parent's id + "-child") and returns its result: the start of
    the child and the news that it closed are both transfer tasks of the server."""

    @workflow.run
    async def run(self, i: int, wait: bool) -> str:
        child = await workflow.execute_child_workflow(
            ChildWorkflow.run, args=[i, wait], id=f"{workflow.info().workflow_id}-child")
        return f"parent of {child}"


def expected(i: int) -> str:
    return f"{i}:{(i * 31 + 7) % 1009}:{(i * 31 + 14) % 1009}"


async def main(addr: str, tq: str, cache: bool = True) -> None:
    while True:
        try:
            client = await Client.connect(addr, retry_config=RETRY)
            break
        except Exception:
            await asyncio.sleep(0.5)
    worker = Worker(client, task_queue=tq, workflows=[OutageWorkflow, ParentWorkflow, ChildWorkflow], activities=[mix],
                    workflow_runner=UnsandboxedWorkflowRunner(), max_concurrent_activities=50,
                    **({} if cache else {"max_cached_workflows": 0}))
    await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], "--no-cache" not in sys.argv[3:]))
    finally:
        sys.stdout.flush()
        os._exit(0)
