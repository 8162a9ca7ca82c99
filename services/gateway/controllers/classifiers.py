"""Custom classifiers: create (train on labelled examples), list, describe, delete, classify."""

from __future__ import annotations

from litestar import Controller, delete, get, post

from services.gateway.caller import Caller, ServiceCaller
from services.gateway.classification_schemas import ClassifyBody, CreateClassifierBody
from services.gateway.settings import GatewaySettings
from services.gateway.texts import texts_of
from shared.messages.classifiers import (
    CLASSIFY,
    CREATE_CLASSIFIER,
    DELETE_CLASSIFIER,
    DESCRIBE_CLASSIFIER,
    LIST_CLASSIFIERS,
    ClassifierDeleted,
    ClassifierInfo,
    ClassifierList,
    ClassifierRef,
    CreateClassifier,
    ListClassifiers,
    PredictRequest,
    PredictResponse,
)


async def predict_labels(
    name: str, data: ClassifyBody, caller: Caller, settings: GatewaySettings
) -> PredictResponse:
    texts = texts_of(data.q, settings)
    return await caller.call(CLASSIFY, PredictRequest(name=name, texts=texts))


class ClassifiersController(Controller):
    path = "/v1/classifiers"
    tags = ["classifiers"]

    @post("/", status_code=201, summary="Train a classifier from labelled examples (409 if taken)")
    async def create(
        self, data: CreateClassifierBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> ClassifierInfo:
        request = CreateClassifier(
            name=data.name, examples=tuple(data.examples), description=data.description
        )
        return await caller.call(
            CREATE_CLASSIFIER, request, timeout_s=settings.classifier_train_timeout_s
        )

    @get("/", summary="List classifiers")
    async def list_all(self, caller: ServiceCaller) -> ClassifierList:
        return await caller.call(LIST_CLASSIFIERS, ListClassifiers())

    @get("/{name:str}", summary="Labels, example counts and validation accuracy of a classifier")
    async def describe(self, name: str, caller: ServiceCaller) -> ClassifierInfo:
        return await caller.call(DESCRIBE_CLASSIFIER, ClassifierRef(name=name))

    @delete("/{name:str}", status_code=200, summary="Delete a classifier")
    async def remove(self, name: str, caller: ServiceCaller) -> ClassifierDeleted:
        return await caller.call(DELETE_CLASSIFIER, ClassifierRef(name=name))

    @post("/{name:str}/predict", status_code=200, summary="Classify texts in any language")
    async def predict(
        self, name: str, data: ClassifyBody, caller: ServiceCaller, settings: GatewaySettings
    ) -> PredictResponse:
        return await predict_labels(name, data, caller, settings)
