"""Custom text classifiers: heads trained on embeddings from labelled examples (tasks)."""

from __future__ import annotations

from shared.messages.base import Message, Method


class LabelledExample(Message, frozen=True, kw_only=True):
    text: str
    label: str


class CreateClassifier(Message, frozen=True, kw_only=True):
    name: str
    examples: tuple[LabelledExample, ...]
    description: str = ""


class ClassifierRef(Message, frozen=True, kw_only=True):
    name: str


class ListClassifiers(Message, frozen=True, kw_only=True):
    pass


class LabelCount(Message, frozen=True, kw_only=True):
    label: str
    examples: int


class Validation(Message, frozen=True, kw_only=True):
    """Accuracy of a head trained without the held-out examples, on them."""

    accuracy: float
    held_out: int
    trained_on: int


class ClassifierInfo(Message, frozen=True, kw_only=True):
    name: str
    description: str
    labels: tuple[LabelCount, ...]
    examples: int
    validation: Validation
    embedding_model: str
    created_at: str
    """ISO 8601, UTC."""
    train_seconds: float


class ClassifierList(Message, frozen=True, kw_only=True):
    classifiers: tuple[ClassifierInfo, ...]


class ClassifierDeleted(Message, frozen=True, kw_only=True):
    name: str


class PredictRequest(Message, frozen=True, kw_only=True):
    name: str
    texts: tuple[str, ...]


class LabelScore(Message, frozen=True, kw_only=True):
    label: str
    probability: float


class Prediction(Message, frozen=True, kw_only=True):
    label: str
    confidence: float
    scores: tuple[LabelScore, ...]
    """Every label, most probable first."""


class PredictResponse(Message, frozen=True, kw_only=True):
    classifier: str
    predictions: tuple[Prediction, ...]


CREATE_CLASSIFIER: Method[CreateClassifier, ClassifierInfo] = Method(
    "tasks", "create_classifier", CreateClassifier, ClassifierInfo
)
LIST_CLASSIFIERS: Method[ListClassifiers, ClassifierList] = Method(
    "tasks", "list_classifiers", ListClassifiers, ClassifierList
)
DESCRIBE_CLASSIFIER: Method[ClassifierRef, ClassifierInfo] = Method(
    "tasks", "describe_classifier", ClassifierRef, ClassifierInfo
)
DELETE_CLASSIFIER: Method[ClassifierRef, ClassifierDeleted] = Method(
    "tasks", "delete_classifier", ClassifierRef, ClassifierDeleted
)
CLASSIFY: Method[PredictRequest, PredictResponse] = Method(
    "tasks", "classify", PredictRequest, PredictResponse
)
