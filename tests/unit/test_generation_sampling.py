"""Decoding options checked against the context before the engine sees them (no engine)."""

from __future__ import annotations

import pytest

from services.generation.rag import cited_numbers
from services.generation.sampling import check_json_schema, check_sampling
from shared.errors import BabelError, ErrorCode
from shared.messages.generation import Sampling


def test_max_tokens_defaults_to_the_room_left_in_the_context() -> None:
    checked = check_sampling(Sampling(), prompt_tokens=100, max_model_len=2048)
    assert checked.max_tokens == 1948


def test_prompt_plus_max_tokens_beyond_the_context_names_the_counts() -> None:
    with pytest.raises(BabelError) as caught:
        check_sampling(Sampling(max_tokens=2000), prompt_tokens=100, max_model_len=2048)
    assert caught.value.code == ErrorCode.CONTEXT_LENGTH_EXCEEDED
    assert caught.value.field == "max_tokens"
    message = str(caught.value)
    assert "100 tokens" in message
    assert "2000" in message
    assert "2048" in message


def test_a_prompt_that_fills_the_context_is_refused() -> None:
    with pytest.raises(BabelError) as caught:
        check_sampling(Sampling(), prompt_tokens=2048, max_model_len=2048)
    assert caught.value.code == ErrorCode.CONTEXT_LENGTH_EXCEEDED
    assert caught.value.field == "messages"


def test_exactly_full_context_is_accepted() -> None:
    checked = check_sampling(Sampling(max_tokens=48), prompt_tokens=2000, max_model_len=2048)
    assert checked.max_tokens == 48


@pytest.mark.parametrize(
    ("sampling", "field"),
    [
        (Sampling(max_tokens=0), "max_tokens"),
        (Sampling(temperature=-0.1), "temperature"),
        (Sampling(temperature=2.5), "temperature"),
        (Sampling(top_p=0.0), "top_p"),
        (Sampling(n=0), "n"),
        (Sampling(n=9), "n"),
        (Sampling(stop=("",)), "stop"),
        (Sampling(stop=tuple(str(i) for i in range(9))), "stop"),
    ],
)
def test_out_of_range_options_name_their_field(sampling: Sampling, field: str) -> None:
    with pytest.raises(BabelError) as caught:
        check_sampling(sampling, prompt_tokens=10, max_model_len=2048)
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == field


def test_invalid_json_schema_is_refused_with_where() -> None:
    with pytest.raises(BabelError) as caught:
        check_json_schema({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert caught.value.code == ErrorCode.INVALID_SCHEMA
    assert "properties/a/type" in str(caught.value)


def test_valid_json_schema_passes() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    checked = check_sampling(Sampling(json_schema=schema), prompt_tokens=5, max_model_len=100)
    assert checked.json_schema == schema


def test_cited_numbers_keeps_valid_markers_in_first_seen_order() -> None:
    answer = "Paris [2]. It is old [1][2]. See [7] and [0]."
    assert cited_numbers(answer, valid=3) == (2, 1)
    assert cited_numbers("no citations", valid=3) == ()
