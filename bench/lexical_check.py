"""BM25 sanity check of the lexical tokenizer on XQuAD, same-language retrieval.

For each language: the 240 paragraphs are the corpus, the 1,190 questions the queries,
the paragraph a question was asked about its one relevant document. BM25 is bm25s
(Lucene variant, k1 1.5, b 0.75) over ``services.retrieval.text.lexical.tokenize``
tokens; ``--naive`` swaps in lowercase ``\\w+`` words (no stemming, no jieba) to show
what the tokenizer adds. REFERENCES.md's reference: ~94.9 nDCG@10 (mean of de, es, zh, ar).

    .venv/bin/python bench/lexical_check.py [--languages en de es zh ar] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import bm25s
import numpy as np

from services.retrieval.text.lexical import tokenize, warm_up

DATA = Path(__file__).resolve().parent / "data" / "xquad"
Tokenizer = Callable[[str, str], list[str]]


def load(path: Path) -> tuple[list[str], list[str], list[int]]:
    """Paragraphs, questions, and each question's paragraph index."""
    paragraphs: list[str] = []
    questions: list[str] = []
    gold: list[int] = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                gold.append(len(paragraphs))
            paragraphs.append(paragraph["context"])
    return paragraphs, questions, gold


def naive(text: str, language: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def evaluate(data: Path, language: str, tokenizer: Tokenizer, k: int) -> dict[str, float]:
    paragraphs, questions, gold = load(data / f"xquad.{language}.json")
    started = time.perf_counter()
    corpus = [tokenizer(text, language) for text in paragraphs]
    queries = [tokenizer(text, language) for text in questions]
    seconds = time.perf_counter() - started
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index(corpus, show_progress=False)
    known = set(retriever.vocab_dict)
    ndcg: list[float] = []
    recall: list[float] = []
    for query, relevant in zip(queries, gold, strict=True):
        terms = [t for t in query if t in known]
        ranked: list[int] = []
        if terms:
            ids, scores = retriever.retrieve([terms], k=k, show_progress=False)
            ranked = [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        rank = ranked.index(relevant) + 1 if relevant in ranked else 0
        ndcg.append(1.0 / math.log2(rank + 1) if rank else 0.0)
        recall.append(1.0 if rank else 0.0)
    chars = sum(map(len, paragraphs)) + sum(map(len, questions))
    return {
        f"ndcg@{k}": 100 * float(np.mean(ndcg)),
        f"recall@{k}": 100 * float(np.mean(recall)),
        "tokenize_chars_per_s": chars / seconds,
        "paragraphs": len(paragraphs),
        "questions": len(questions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--languages", nargs="+", default=["en", "de", "es", "zh", "ar"])
    parser.add_argument("--data", type=Path, default=DATA, help="folder of xquad.<lang>.json")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--naive", action="store_true", help="lowercase \\w+ words instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    warm_up(args.languages)
    tokenizer: Tokenizer = naive if args.naive else tokenize
    results = {x: evaluate(args.data, x, tokenizer, args.k) for x in args.languages}
    ndcg, recall = f"ndcg@{args.k}", f"recall@{args.k}"
    print(f"{'lang':6}{ndcg:>10}{recall:>11}{'tokenize chars/s':>18}")
    for language, row in results.items():
        speed = row["tokenize_chars_per_s"]
        print(f"{language:6}{row[ndcg]:10.1f}{row[recall]:11.1f}{speed:18,.0f}")
    reference = [x for x in ("de", "es", "zh", "ar") if x in results]  # REFERENCES.md's set
    if reference:
        mean = statistics.fmean(results[x][ndcg] for x in reference)
        print(f"mean nDCG@{args.k} over {'/'.join(reference)}: {mean:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
