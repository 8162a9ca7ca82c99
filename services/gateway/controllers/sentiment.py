"""Sentiment: ``POST /v1/sentiment``."""

from __future__ import annotations

from litestar import Controller, post

from services.gateway.caller import Caller, ServiceCaller
from services.gateway.classification_schemas import SentimentBody, SentimentReply
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from shared.messages.sentiment import ANALYZE_SENTIMENT, SentimentRequest


async def analyze_sentiment(
    data: SentimentBody, caller: Caller, settings: GatewaySettings
) -> SentimentReply:
    texts = texts_of(data.q, settings)
    reply = await caller.call(
        ANALYZE_SENTIMENT, SentimentRequest(texts=texts, sentences=data.sentences)
    )
    return SentimentReply(results=list(reply.results), model=reply.model)


class SentimentController(Controller):
    path = "/v1"
    tags = ["sentiment"]

    @post(
        "/sentiment",
        status_code=200,
        summary="Sentiment of one text or many: label, probabilities, score and magnitude",
    )
    async def analyze(
        self, data: SentimentBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> SentimentReply:
        return await analyze_sentiment(data, caller, settings)
