"""Checks a request's decoding options against the model's context, before the engine sees it.

Pure (no vLLM import), so the rules are unit-tested on their own; ``engine.py`` turns the
checked options into vLLM's ``SamplingParams``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema.exceptions

from shared.errors import BabelError, ErrorCode
from shared.json_shape import check_json
from shared.messages.generation import Sampling

MAX_N = 8
MAX_STOP = 8
MAX_SCHEMA_DEPTH = 64
"""JSON nesting of a response_format schema (the schema checker recurses per level)."""


@dataclass(frozen=True, slots=True)
class CheckedSampling:
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...]
    seed: int | None
    n: int
    json_schema: dict[str, Any] | None
    ignore_eos: bool


def check_json_schema(schema: dict[str, Any]) -> None:
    """Refuse a schema that is not a valid JSON Schema (the engine would fail to compile it)."""
    check_json(schema, "response_format.json_schema.schema", MAX_SCHEMA_DEPTH)
    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise BabelError(
            ErrorCode.INVALID_SCHEMA,
            f"response_format.json_schema is not a valid JSON Schema at {where}: {exc.message}",
            field="response_format.json_schema.schema",
        ) from exc


def check_sampling(
    sampling: Sampling, *, prompt_tokens: int, max_model_len: int
) -> CheckedSampling:
    """Validate ``sampling`` and fix ``max_tokens`` so prompt + output fit in the context."""
    room = max_model_len - prompt_tokens
    if room < 1:
        raise BabelError(
            ErrorCode.CONTEXT_LENGTH_EXCEEDED,
            f"the prompt has {prompt_tokens} tokens; the model's context is {max_model_len} tokens "
            "and leaves no room for an answer",
            field="messages",
        )
    max_tokens = sampling.max_tokens if sampling.max_tokens is not None else room
    if max_tokens < 1:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "max_tokens must be at least 1", field="max_tokens"
        )
    if max_tokens > room:
        raise BabelError(
            ErrorCode.CONTEXT_LENGTH_EXCEEDED,
            f"prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) = "
            f"{prompt_tokens + max_tokens} tokens, more than the model's context of "
            f"{max_model_len} tokens",
            field="max_tokens",
        )
    if not 0.0 <= sampling.temperature <= 2.0:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "temperature must be 0..2", field="temperature"
        )
    if not 0.0 < sampling.top_p <= 1.0:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "top_p must be in (0, 1]", field="top_p")
    if not 1 <= sampling.n <= MAX_N:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, f"n must be 1..{MAX_N}", field="n")
    if len(sampling.stop) > MAX_STOP:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, f"at most {MAX_STOP} stop sequences", field="stop"
        )
    if any(not s for s in sampling.stop):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, "stop sequences must not be empty", field="stop"
        )
    if sampling.json_schema is not None:
        check_json_schema(sampling.json_schema)
    return CheckedSampling(
        max_tokens=max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        stop=sampling.stop,
        seed=sampling.seed,
        n=sampling.n,
        json_schema=sampling.json_schema,
        ignore_eos=sampling.ignore_eos,
    )
