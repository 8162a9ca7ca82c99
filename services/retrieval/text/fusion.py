"""Reciprocal-rank fusion (Cormack et al., 2009) of ranked id lists."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.errors import BabelError, ErrorCode


def rrf(
    lists: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Fused ``(id, score)`` pairs, best first.

    An id at 1-based rank ``r`` of list ``i`` scores ``weights[i] / (k + r)``; scores add up
    across lists. Within one list only an id's first (best) rank counts. Ties keep the
    order in which ids were first met (list by list, rank by rank), so the result is
    deterministic.
    """
    if k < 0:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, f"k must be at least 0, got {k}", field="k")
    if weights is None:
        weights = [1.0] * len(lists)
    elif len(weights) != len(lists):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"got {len(weights)} weights for {len(lists)} ranked lists",
            field="weights",
        )
    elif any(not math.isfinite(w) or w < 0 for w in weights):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            "weights must be finite and non-negative",
            field="weights",
        )
    scores: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        seen: set[int] = set()
        for rank, item in enumerate(ranked, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
