"""The constraints the API enforces, stated in the OpenAPI document.

The request structs are what the gateway decodes, but several checks live in the code
that handles them (a text must not be blank, a list not empty, a name must match the
service's pattern, a batch may target only some endpoints) or come from settings. This
module writes each one into the generated document, from one table per kind, so that a
client generated from it (or a fuzzer) sees the API as it is: a request the document calls
valid is accepted, one it calls invalid is refused with 422.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIType,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from services.batch.settings import BatchSettings
from services.gateway.access.scopes import RULES
from services.gateway.openapi_operations import operations
from services.gateway.settings import GatewaySettings
from services.gateway.translation_schemas import MAX_ALTERNATIVES
from shared.access.records import DURATION_UNITS_S, MAX_DURATION_S

NOT_BLANK = r"[^\s\x1c-\x1f]"
"""Holds a character that is not white space (Python's ``str.strip`` view of it)."""
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$(?!\n)"
CLASSIFIER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$(?!\n)"
BATCH_ENDPOINT = (
    r"^/v1/(?:chat/completions|completions|embeddings|translate|sentiment|detect"
    r"|classifiers/[^/]+/predict|collections/[^/]+/documents)$(?!\n)"
)
FILTER_FIELD = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$(?!\n)"
MAX_STOP = 8
"""The generation service's limit on stop sequences (``services.generation.sampling``)."""
_UNIT_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}


def _at_most(limit: int) -> str:
    """A regex for the decimal numbers 1..limit (leading zeros allowed)."""
    digits = str(limit)
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    same = []
    for i, digit in enumerate(digits):
        rest = len(digits) - i - 1
        low = "1" if i == 0 else "0"
        if int(digit) > int(low):
            tail = f"[0-9]{{{rest}}}" if rest else ""
            same.append(f"{digits[:i]}[{low}-{int(digit) - 1}]{tail}")
    same.append(digits)
    return "0*(?:" + "|".join(shorter + same) + ")"


def duration_pattern(limit_s: int, units: dict[str, int], bare: bool = False) -> str:
    """Durations like ``24h`` of 1 s .. ``limit_s`` (``bare``: a plain number is seconds)."""
    choices = [
        f"{_at_most(limit_s // unit_s)}{unit}"
        for unit, unit_s in units.items()
        if limit_s >= unit_s
    ]
    if bare:
        choices.append(_at_most(limit_s))
    return "^(?:" + "|".join(choices) + r")$(?!\n)"


def _text(settings: GatewaySettings | None = None) -> Schema:
    """A string that is not blank (and not over the text limit, when one applies)."""
    return Schema(
        type=OpenAPIType.STRING,
        pattern=NOT_BLANK,
        min_length=1,
        max_length=settings.max_text_chars if settings is not None else None,
    )


def _texts(settings: GatewaySettings) -> Schema:
    """``q``: one text, or a list of 1..max_batch texts."""
    return Schema(
        one_of=[
            _text(settings),
            Schema(
                type=OpenAPIType.ARRAY,
                items=_text(settings),
                min_items=1,
                max_items=settings.max_batch,
            ),
        ]
    )


INT64 = (-(2**63), 2**63 - 1)
JSON_VALUE = "JsonValue"
_JSON_VALUE_REF = Reference(ref=f"#/components/schemas/{JSON_VALUE}")


def _int64(schema: Schema) -> Schema:
    """``schema`` with its integers (``2``, ``2.0``) within 64 bits, as the services store them."""
    schema.schema_if = Schema(type=OpenAPIType.INTEGER)
    schema.then = Schema(minimum=INT64[0], maximum=INT64[1])
    return schema


def _json_value() -> Schema:
    """Any JSON whose integers fit in 64 bits (free-form metadata, filters, JSON schemas)."""
    return _int64(
        Schema(
            description="Any JSON value; integers within 64 bits.",
            items=_JSON_VALUE_REF,
            additional_properties=_JSON_VALUE_REF,
        )
    )


def _scalar(ordered: bool = False) -> Schema:
    kinds = [OpenAPIType.STRING, OpenAPIType.NUMBER]
    return _int64(Schema(type=kinds if ordered else [*kinds, OpenAPIType.BOOLEAN]))


def _condition() -> Schema:
    """A filter's condition on one metadata field: a value, or operators on values."""
    operators: dict[str, Schema] = {op: _scalar() for op in ("$eq", "$ne")}
    operators.update({op: _scalar(ordered=True) for op in ("$gt", "$gte", "$lt", "$lte")})
    operators.update(
        {op: Schema(type=OpenAPIType.ARRAY, items=_scalar(), min_items=1) for op in ("$in", "$nin")}
    )
    return Schema(
        one_of=[
            _scalar(),
            Schema(
                type=OpenAPIType.OBJECT,
                properties=operators,  # type: ignore[arg-type]
                additional_properties=False,
                min_properties=1,
            ),
        ]
    )


Patch = Callable[[Schema], None]


def _stop() -> Patch:
    """``stop``: one sequence or up to MAX_STOP, none empty (the generation service's check)."""
    sequence = Schema(type=OpenAPIType.STRING, min_length=1)
    return _replace(
        lambda: Schema(
            one_of=[
                sequence,
                Schema(type=OpenAPIType.ARRAY, items=sequence, max_items=MAX_STOP),
                Schema(type=OpenAPIType.NULL),
            ]
        )
    )


def _set(**fields: object) -> Patch:
    def patch(schema: Schema) -> None:
        for name, value in fields.items():
            setattr(schema, name, value)

    return patch


def _replace(make: Callable[[], Schema]) -> Patch:
    def patch(schema: Schema) -> None:
        new = make()
        for name in ("type", "one_of", "items", "pattern", "min_length", "max_length"):
            setattr(schema, name, getattr(new, name))
        for name in ("min_items", "max_items", "enum", "const"):
            setattr(schema, name, getattr(new, name))

    return patch


def _property_patches(
    gateway: GatewaySettings, batch: BatchSettings
) -> dict[tuple[str, str], Patch]:
    """(component, property) → how its schema is tightened."""
    texts = _replace(lambda: _texts(gateway))
    not_blank = _set(pattern=NOT_BLANK, min_length=1)
    scopes = sorted({scope for _, _, scope in RULES if scope is not None})
    return {
        ("DetectBody", "q"): texts,
        ("SentimentBody", "q"): texts,
        ("ClassifyBody", "q"): texts,
        ("TranslateBody", "texts"): texts,
        ("EmbeddingsBody", "input"): texts,
        ("SearchBody", "query"): not_blank,
        ("RagBody", "question"): not_blank,
        ("RagBody", "collection"): _set(pattern=COLLECTION_NAME),
        ("ChatCompletionBody", "messages"): _set(min_items=1),
        ("CompletionBody", "prompt"): _replace(
            lambda: Schema(
                one_of=[
                    Schema(type=OpenAPIType.STRING, min_length=1),
                    Schema(
                        type=OpenAPIType.ARRAY,
                        items=Schema(type=OpenAPIType.STRING, min_length=1),
                        min_items=1,
                        max_items=gateway.max_prompts,
                    ),
                ]
            )
        ),
        ("IngestBody", "documents"): _set(min_items=1),
        ("DocumentIn", "id"): not_blank,
        ("DocumentIn", "text"): not_blank,
        ("DeleteDocumentsBody", "ids"): _set(min_items=1),
        ("CreateCollectionBody", "name"): _set(pattern=COLLECTION_NAME),
        ("CreateClassifierBody", "name"): _set(pattern=CLASSIFIER_NAME),
        ("CreateClassifierBody", "examples"): _set(min_items=6),
        ("LabelledExample", "text"): not_blank,
        ("LabelledExample", "label"): not_blank,
        ("CreateKeyBody", "scopes"): _set(
            items=Schema(type=OpenAPIType.STRING, enum=scopes), min_items=1
        ),
        ("CreateBatchBody", "endpoint"): _set(pattern=BATCH_ENDPOINT),
        ("CreateBatchBody", "completion_window"): _set(
            pattern=duration_pattern(batch.completion_window_max_s, _UNIT_S),
            description=(
                f"A duration: a number and s, m, h or d; at most {batch.completion_window_max_s} s."
            ),
        ),
        ("FileUpload", "purpose"): _set(enum=["batch"]),
        ("CreateKeyBody", "expires_in"): _set(
            pattern=duration_pattern(MAX_DURATION_S, DURATION_UNITS_S, bare=True)
        ),
        ("ChatCompletionBody", "stop"): _stop(),
        ("CompletionBody", "stop"): _stop(),
        ("FileUploadForm", "metadata"): _replace(
            lambda: Schema(type=OpenAPIType.OBJECT, description="A JSON object (the part's text).")
        ),
        ("DocumentIn", "metadata"): _set(additional_properties=_JSON_VALUE_REF),
        ("JsonSchemaSpec", "schema"): _set(additional_properties=_JSON_VALUE_REF),
        ("SearchBody", "filter"): _set(
            property_names=Schema(type=OpenAPIType.STRING, pattern=FILTER_FIELD),
            additional_properties=_condition(),
        ),
        ("RagBody", "filter"): _set(
            property_names=Schema(type=OpenAPIType.STRING, pattern=FILTER_FIELD),
            additional_properties=_condition(),
        ),
    }


_REQUIRED: dict[str, tuple[str, ...]] = {
    "ChatCompletionBody": ("messages",),
    "CompletionBody": ("prompt",),
}
"""Fields with a default in the struct that the handler still refuses to go without."""

_PATH_PATTERNS: dict[tuple[str, str], str] = {
    ("/v1/classifiers/{name}", "name"): CLASSIFIER_NAME,
    ("/v1/classifiers/{name}/predict", "name"): CLASSIFIER_NAME,
}
"""Path parameters checked against a pattern (422) before the resource is looked up."""


def _tighten_parameters(openapi: OpenAPI) -> None:
    for path, _, operation in operations(openapi):
        for parameter in operation.parameters or []:
            if not isinstance(parameter, Parameter) or not isinstance(parameter.schema, Schema):
                continue
            pattern = _PATH_PATTERNS.get((path, parameter.name))
            if pattern is not None:
                parameter.schema.pattern = pattern


def _strict_structs() -> dict[str, type[msgspec.Struct]]:
    """This project's structs that refuse unknown fields, by class name."""
    found: dict[str, type[msgspec.Struct]] = {}
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        ours = cls.__module__.startswith(("services.", "shared."))
        if ours and cls.__struct_config__.forbid_unknown_fields:
            found[cls.__name__] = cls
    return found


def _forbid_unknown_fields(schemas: dict[str, Schema]) -> None:
    """Request bodies refuse unknown fields (``forbid_unknown_fields``): say so."""
    for name in _strict_structs().keys() & schemas.keys():
        schemas[name].additional_properties = False


_LT_MEDIA_TYPES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


def _libretranslate_bodies(openapi: OpenAPI, gateway: GatewaySettings) -> None:
    """LibreTranslate's routes read their fields by hand (JSON, form or multipart, like
    LibreTranslate): their bodies are written here. Other fields are ignored, as there."""
    q = _texts(gateway)
    api_key = Schema(type=OpenAPIType.STRING, description="The API key (or send a header)")
    language = Schema(type=OpenAPIType.STRING, min_length=1, description="A code, or auto")
    bodies = {
        "/detect": Schema(
            type=OpenAPIType.OBJECT,
            required=["q"],
            properties={"q": q, "api_key": api_key},
        ),
        "/translate": Schema(
            type=OpenAPIType.OBJECT,
            required=["q", "source", "target"],
            properties={
                "q": q,
                "source": language,
                "target": language,
                "format": Schema(type=OpenAPIType.STRING, enum=["text", "html"]),
                "alternatives": Schema(
                    type=OpenAPIType.INTEGER, minimum=0, maximum=MAX_ALTERNATIVES
                ),
                "api_key": api_key,
            },
        ),
    }
    for path, schema in bodies.items():
        item = (openapi.paths or {}).get(path)
        if item is None or item.post is None:
            continue
        item.post.request_body = RequestBody(
            required=True,
            content={media: OpenAPIMediaType(schema=schema) for media in _LT_MEDIA_TYPES},
        )


def _response_format(schema: Schema) -> None:
    """``json_schema`` is required, with a non-empty ``schema``, when the type says so."""
    schema.schema_if = Schema(properties={"type": Schema(const="json_schema")}, required=["type"])
    schema.then = Schema(
        required=["json_schema"],
        properties={
            "json_schema": Schema(
                type=OpenAPIType.OBJECT,
                required=["schema"],
                properties={"schema": Schema(type=OpenAPIType.OBJECT, min_properties=1)},
            )
        },
    )


def _streamed_completion(schema: Schema) -> None:
    """A streamed completion takes one prompt (a list of one at most)."""
    schema.schema_if = Schema(properties={"stream": Schema(const=True)}, required=["stream"])
    schema.then = Schema(properties={"prompt": Schema(max_items=1)})


def state_constraints(openapi: OpenAPI, gateway: GatewaySettings, batch: BatchSettings) -> None:
    """Write every enforced constraint of the table into ``openapi``."""
    components = openapi.components
    schemas = {
        name: schema
        for name, schema in (components.schemas or {}).items()
        if isinstance(schema, Schema)
    }
    if components.schemas is not None:
        components.schemas[JSON_VALUE] = _json_value()
    for (component, field), patch in _property_patches(gateway, batch).items():
        prop = (schemas[component].properties or {}).get(field)
        if isinstance(prop, Schema):
            patch(prop)
    for component, fields in _REQUIRED.items():
        schema = schemas[component]
        schema.required = sorted({*(schema.required or []), *fields})
    _forbid_unknown_fields(schemas)
    _response_format(schemas["ResponseFormat"])
    _streamed_completion(schemas["CompletionBody"])
    _tighten_parameters(openapi)
    _libretranslate_bodies(openapi, gateway)
