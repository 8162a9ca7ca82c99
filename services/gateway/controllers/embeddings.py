"""``POST /v1/embeddings`` in the OpenAI shape (works with the ``openai`` client)."""

from __future__ import annotations

import base64

import numpy as np
from litestar import Controller, post

from services.gateway.caller import Caller, ServiceCaller
from services.gateway.retrieval_schemas import (
    Embedding,
    EmbeddingsBody,
    EmbeddingsResult,
    EmbeddingUsage,
)
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from shared.errors import BabelError, ErrorCode
from shared.messages.retrieval import EMBED, EmbedRequest


async def embed_texts(
    data: EmbeddingsBody, caller: Caller, settings: GatewaySettings
) -> EmbeddingsResult:
    texts = texts_of(data.input, settings, field="input")
    reply = await caller.call(
        EMBED, EmbedRequest(texts=texts, model=data.model, input_type=data.input_type)
    )
    if data.dimensions is not None and data.dimensions != reply.dim:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"model {reply.model!r} has {reply.dim} dimensions; it cannot shorten them",
            field="dimensions",
        )
    vectors = np.frombuffer(reply.vectors, dtype=np.float32).reshape(len(texts), reply.dim)
    if data.encoding_format == "base64":
        items = [
            Embedding(index=i, embedding=base64.b64encode(row.tobytes()).decode())
            for i, row in enumerate(vectors)
        ]
    else:
        items = [Embedding(index=i, embedding=row.tolist()) for i, row in enumerate(vectors)]
    return EmbeddingsResult(
        data=items,
        model=reply.model,
        usage=EmbeddingUsage(prompt_tokens=reply.tokens, total_tokens=reply.tokens),
    )


class EmbeddingsController(Controller):
    path = "/v1"
    tags = ["retrieval"]

    @post("/embeddings", status_code=200, summary="Embed texts (OpenAI-compatible)")
    async def embeddings(
        self, data: EmbeddingsBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> EmbeddingsResult:
        return await embed_texts(data, caller, settings)
