"""Reciprocal-rank fusion: scores, weights, duplicates, ties and argument checks."""

from __future__ import annotations

import math

import pytest

from services.retrieval.text.fusion import rrf
from shared.errors import BabelError, ErrorCode


def test_scores_add_reciprocal_ranks_across_lists() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]], k=60)
    assert [item for item, _ in fused] == [1, 3, 2, 4]
    scores = dict(fused)
    assert scores[1] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[3] == pytest.approx(1 / 63 + 1 / 61)
    assert scores[2] == pytest.approx(1 / 62)
    assert scores[4] == pytest.approx(1 / 63)


def test_weights_scale_each_list() -> None:
    dense, lexical = [10, 20, 30], [30, 20, 10]
    assert rrf([dense, lexical], weights=[1.0, 0.0])[0] == (10, pytest.approx(1 / 61))
    assert rrf([dense, lexical], weights=[0.2, 1.0])[0][0] == 30
    assert [i for i, _ in rrf([dense, lexical], weights=[1.0, 0.5])] == [10, 20, 30]


def test_only_the_best_rank_of_a_repeated_id_counts() -> None:
    assert rrf([[7, 7, 8]], k=0) == [(7, 1.0), (8, pytest.approx(1 / 3))]


def test_ties_keep_first_seen_order() -> None:
    assert [i for i, _ in rrf([[5, 6], [6, 5]])] == [5, 6]
    assert [i for i, _ in rrf([[9], [2], [4]])] == [9, 2, 4]


def test_empty_inputs() -> None:
    assert rrf([]) == []
    assert rrf([[], []]) == []


@pytest.mark.parametrize(
    ("lists", "k", "weights", "field"),
    [
        ([[1]], -1, None, "k"),
        ([[1], [2]], 60, [1.0], "weights"),
        ([[1]], 60, [-0.5], "weights"),
        ([[1]], 60, [math.nan], "weights"),
        ([[1]], 60, [math.inf], "weights"),
    ],
)
def test_invalid_arguments_are_babel_errors(
    lists: list[list[int]], k: int, weights: list[float] | None, field: str
) -> None:
    with pytest.raises(BabelError) as caught:
        rrf(lists, k=k, weights=weights)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert caught.value.field == field
