"""The `sdk` workload's workflow and activity: one activity, then complete, like the
driver's `activity` workload but through the official Python SDK."""
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench-act")
async def bench_act(x: str) -> str:
    return "act-out"


@workflow.defn(name="bench-sdk")
class BenchSdkWorkflow:
    @workflow.run
    async def run(self, x: str) -> str:
        return await workflow.execute_activity(
            "bench-act", x, start_to_close_timeout=timedelta(seconds=30)
        )
