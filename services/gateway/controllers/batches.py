"""Batches (OpenAI-compatible): create, describe, list, cancel. Celery workers run them."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from services.batch.records import BatchList, BatchObject
from services.batch.service import BatchService
from services.gateway.batch_schemas import CreateBatchBody, problems

IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", description="The same key answers the same batch"),
]


class BatchesController(Controller):
    path = "/v1/batches"
    tags = ["batch"]

    @post(
        "/",
        status_code=200,
        summary="Create a batch from an uploaded file",
        responses=problems(404, 422, 503),
    )
    async def create(
        self,
        data: CreateBatchBody,
        batches: BatchService,
        idempotency_key: IdempotencyKey = None,
    ) -> BatchObject:
        return await asyncio.to_thread(
            batches.create_batch,
            data.input_file_id,
            data.endpoint,
            data.completion_window,
            data.metadata,
            idempotency_key,
        )

    @get("/", summary="List batches, newest first", responses=problems(422))
    async def list_all(
        self,
        batches: BatchService,
        after: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
    ) -> BatchList:
        return await asyncio.to_thread(batches.list_batches, after, limit)

    @get(
        "/{batch_id:str}", summary="A batch: status, request counts, files", responses=problems(404)
    )
    async def describe(self, batch_id: str, batches: BatchService) -> BatchObject:
        return await asyncio.to_thread(batches.get_batch, batch_id)

    @post(
        "/{batch_id:str}/cancel",
        status_code=200,
        summary="Cancel a batch (a finished one is answered unchanged)",
        responses=problems(404, 503),
    )
    async def cancel(self, batch_id: str, batches: BatchService) -> BatchObject:
        return await asyncio.to_thread(batches.cancel, batch_id)
