"""Is anything in the collection relevant to a question? A per-query decision on dense scores.

Absolute cosine scores of multilingual-e5 move with the language pair, the script and the
question's length (XQuAD, gold paragraph: median 0.87 for English questions on English
paragraphs, 0.77 for English questions on Chinese ones), so one threshold cannot serve every
language. What holds across pairs is how far the best hit stands above the collection's other
hits *for this query*: the margin of the top score over the median of the rest. A low
absolute floor refuses the clearly irrelevant; between the two, the model judges
(``answer_json``). ``bench/rag_eval.py`` measures both stages per pair.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def relevant(scores: Sequence[float], floor: float, margin: float) -> bool:
    """``scores``: the query's hits, best first (as many as calibration asked for).

    True when the best clears ``floor`` and stands at least ``margin`` above the median of
    the others; a collection with a single hit has no others, and the floor decides."""
    if not scores or scores[0] < floor:
        return False
    rest = scores[1:]
    return not rest or scores[0] - statistics.median(rest) >= margin
