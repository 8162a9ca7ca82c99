"""HTTP bodies of the OpenAI Batch API (files and batches); the objects answered are in
``services.batch.records``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar.datastructures import UploadFile
from litestar.openapi.datastructures import ResponseSpec

from services.gateway.problems import Problem


@dataclass
class FileUpload:
    file: UploadFile
    """JSONL: one request a line, ``{"custom_id", "method": "POST", "url", "body"}``."""
    purpose: str = "batch"


class CreateBatchBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    input_file_id: str
    endpoint: str
    """``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``, ``/v1/translate``,
    ``/v1/sentiment``, ``/v1/detect``, ``/v1/classifiers/{name}/predict`` or
    ``/v1/collections/{name}/documents``."""
    completion_window: str = "24h"
    """A duration (``24h``, ``90m``, ``30s``, ``2d``); lines not done by then expire."""
    metadata: Annotated[dict[str, str], msgspec.Meta(max_length=16)] | None = None


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries of the problem-details answers a route gives."""
    described = {
        404: "Unknown file or batch id",
        413: "The file is over the size or line limit",
        422: "A field is missing or invalid (the problem names it)",
        503: "The batch queue (Redis) is unreachable",
    }
    return {
        status: ResponseSpec(
            Problem, description=described[status], media_type="application/problem+json"
        )
        for status in statuses
    }
