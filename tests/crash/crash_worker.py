"""Worker process for the crash test: `python crash_worker.py ADDRESS TASK_QUEUE`."""
import asyncio
import os
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def mix(i: int, step: int) -> int:
    return (i * 31 + step * 7) % 1009


@workflow.defn
class CrashWorkflow:
    @workflow.run
    async def run(self, i: int) -> str:
        opts = dict(start_to_close_timeout=timedelta(seconds=10),
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=2)))
        a = await workflow.execute_activity(mix, args=[i, 1], **opts)
        await workflow.sleep(0.5 + (i % 6) * 0.5)
        b = await workflow.execute_activity(mix, args=[i, 2], **opts)
        await workflow.sleep(0.3 + (i % 4) * 0.4)
        return f"{i}:{a}:{b}"


def expected(i: int) -> str:
    return f"{i}:{(i * 31 + 7) % 1009}:{(i * 31 + 14) % 1009}"


async def main(addr: str, tq: str) -> None:
    while True:
        try:
            client = await Client.connect(addr)
            break
        except Exception:
            await asyncio.sleep(0.5)
    worker = Worker(client, task_queue=tq, workflows=[CrashWorkflow], activities=[mix],
                    workflow_runner=UnsandboxedWorkflowRunner(), max_concurrent_activities=50)
    await worker.run()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    finally:
        sys.stdout.flush()
        os._exit(0)
