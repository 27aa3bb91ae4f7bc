"""Client interceptor adding a header to StartWorkflowExecution, to check headers reach the workflow."""
from typing import Any

import temporalio.client
from temporalio.converter import default as default_converter


class _Outbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input: temporalio.client.StartWorkflowInput) -> Any:
        payload = default_converter().payload_converter.to_payloads(["header-value-42"])[0]
        input.headers = {**input.headers, "x-sundial-test": payload}
        return await super().start_workflow(input)


class HeaderInterceptor(temporalio.client.Interceptor):
    def intercept_client(self, next: temporalio.client.OutboundInterceptor) -> temporalio.client.OutboundInterceptor:
        return _Outbound(next)
