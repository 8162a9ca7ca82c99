"""The bounds that come from settings, written into the OpenAPI document.

Body structs are classes fixed at import time, so limits that are settings cannot be
``msgspec.Meta`` constraints; the gateway checks them (``bounds``) and this module states
them in the generated document, so a client generated from it sees the API as it is.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType

from services.gateway.settings import GatewaySettings


def _variants(schema: Schema, kind: OpenAPIType) -> list[Schema]:
    """``schema`` itself or its ``oneOf`` members of type ``kind``."""
    found = [s for s in (schema.one_of or []) if isinstance(s, Schema) and s.type == kind]
    return found or ([schema] if schema.type == kind else [])


def _describe(schema: Schema, text: str) -> None:
    schema.description = f"{schema.description} {text}" if schema.description else text


def state_bounds(app: Litestar, settings: GatewaySettings) -> None:
    """Write the settings' bounds into ``app``'s OpenAPI document (built once, here)."""
    schemas = app.openapi_schema.components.schemas
    if schemas is None:
        return
    props = {name: s.properties or {} for name, s in schemas.items() if isinstance(s, Schema)}
    for prompt in _variants(props["CompletionBody"]["prompt"], OpenAPIType.ARRAY):  # type: ignore[arg-type]
        prompt.max_items = settings.max_prompts
    filter_text = (
        f"At most {settings.max_filter_terms} values in all (each comparison and each "
        f"$in/$nin item counts), nested at most {settings.max_json_depth} levels."
    )
    for body in ("SearchBody", "RagBody"):
        for languages in _variants(props[body]["languages"], OpenAPIType.ARRAY):  # type: ignore[arg-type]
            languages.max_items = settings.max_search_languages
        _describe(props[body]["filter"], filter_text)  # type: ignore[arg-type]
    for name, field in (("DocumentIn", "metadata"), ("JsonSchemaSpec", "schema")):
        _describe(
            props[name][field],  # type: ignore[arg-type]
            f"JSON nested at most {settings.max_json_depth} levels; integers within 64 bits.",
        )
    for body in ("Chunking", "FileUploadForm"):
        for max_chars in _variants(props[body]["max_chars"], OpenAPIType.INTEGER):  # type: ignore[arg-type]
            max_chars.minimum = settings.chunk_min_chars
            max_chars.maximum = settings.chunk_max_chars
        for overlap in _variants(props[body]["overlap_chars"], OpenAPIType.INTEGER):  # type: ignore[arg-type]
            overlap.minimum = 0
            overlap.maximum = int(settings.chunk_max_chars * settings.chunk_max_overlap_fraction)
            _describe(
                overlap,
                f"At most {settings.chunk_max_overlap_fraction:g} of max_chars.",
            )
