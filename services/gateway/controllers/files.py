"""Batch input and output files (OpenAI-compatible): upload, list, describe, read, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Controller, Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter

from services.batch.records import FileDeleted, FileList, FileObject
from services.batch.service import BatchService
from services.gateway.batch_schemas import FileUpload, problems

IdempotencyKey = Annotated[
    str | None,
    Parameter(header="Idempotency-Key", description="The same key answers the same file"),
]


class FilesController(Controller):
    path = "/v1/files"
    tags = ["batch"]

    @post(
        "/",
        status_code=200,
        summary="Upload a batch input file (multipart; purpose=batch; JSONL)",
        responses=problems(413, 422),
    )
    async def upload(
        self,
        data: Annotated[FileUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        batches: BatchService,
        idempotency_key: IdempotencyKey = None,
    ) -> FileObject:
        content = await data.file.read()
        return await asyncio.to_thread(
            batches.create_file, data.file.filename, data.purpose, content, idempotency_key
        )

    @get("/", summary="List files")
    async def list_all(self, batches: BatchService, purpose: str | None = None) -> FileList:
        files = await asyncio.to_thread(batches.list_files, purpose)
        return FileList(
            data=files,
            first_id=files[0].id if files else None,
            last_id=files[-1].id if files else None,
        )

    @get("/{file_id:str}", summary="Describe a file", responses=problems(404))
    async def describe(self, file_id: str, batches: BatchService) -> FileObject:
        return await asyncio.to_thread(batches.get_file, file_id)

    @get(
        "/{file_id:str}/content",
        summary="The file's content (JSONL)",
        media_type="application/jsonl",
        responses=problems(404),
    )
    async def content(self, file_id: str, batches: BatchService) -> Response[bytes]:
        data = await asyncio.to_thread(batches.file_content, file_id)
        return Response(data, media_type="application/jsonl")

    @delete("/{file_id:str}", status_code=200, summary="Delete a file", responses=problems(404))
    async def remove(self, file_id: str, batches: BatchService) -> FileDeleted:
        await asyncio.to_thread(batches.delete_file, file_id)
        return FileDeleted(id=file_id, deleted=True)
