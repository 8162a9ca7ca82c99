"""Cross-language retrieval quality of the retrieval service on XQuAD, through the HTTP API.

For every pair (A, B) of ``--languages`` (questions in A, paragraphs in B, A == B
included): the 240 B paragraphs are one collection (one document = one chunk per
paragraph: ``chunking.max_chars`` 5000), ingested once and reused for every A; every A
question is searched in modes dense, bm25 and hybrid (k = 10; hybrid once per
``--bm25-weights`` value, sent as the request's ``bm25_weight``). One relevant paragraph
per question: recall@1, recall@10, MRR@10, nDCG@10. Summary rows are grouped like the
``bench/REFERENCES.md`` (X>en, en>X, same language), with its in-process reference
numbers beside ours and the hybrid-minus-dense delta per group.

Starts its own Redis + retrieval worker + gateway (``services.launcher.stack``) and
stops them at the end. Everything is measured through ``POST /v1/collections/...``.
Ingest goes a few paragraphs a request (``--ingest-batch``): one ingest RPC that runs
past ~5 s fails with HTTP 500 (see ``bench.stack.RetrievalApi.ingest``). Searches run
``--concurrency`` at a time (16 was a little faster than 8 or 32 on 2 CPUs).

    .venv/bin/python bench/retrieval_quality.py [--languages en,de,es,zh,ar]
        [--pairs 'de>en,en>de'] [--questions 200] [--bm25-weights 0.25,0.5,1.0]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package

from bench.stack import (
    DATA,
    RetrievalApi,
    XQuad,
    bounded_map,
    load_xquad,
    machine_context,
    running_stack,
)

K = 10
METRICS = ("R@1", "R@10", "MRR@10", "nDCG@10")
Pair = tuple[str, str]  # (question language, paragraph language)

# REFERENCES.md: in-process e5 (dense), bm25s (BM25), naive equal-weight RRF (hybrid);
# means over de, es, zh, ar. Percent.
REFERENCE_LANGUAGES = frozenset({"de", "es", "zh", "ar"})
_REF_KEYS = ("dense R@10", "dense nDCG", "bm25 nDCG", "hyb R@10", "hyb nDCG")
REFERENCE: dict[str, dict[str, float]] = {
    "X>en": dict(zip(_REF_KEYS, (96.2, 86.8, 25.2, 90.3, 75.3), strict=True)),
    "en>X": dict(zip(_REF_KEYS, (97.9, 89.4, 24.1, 90.0, 70.0), strict=True)),
    "same": dict(zip(_REF_KEYS, (99.1, 94.8, 94.9, 99.4, 96.3), strict=True)),
}


@dataclass(frozen=True)
class Mode:
    label: str
    mode: str
    bm25_weight: float | None = None


@dataclass
class Result:
    metrics: dict[str, float]
    seconds: float
    queries: int
    detected_as_b: float
    """Share of the questions whose detected language is the paragraphs' language."""


@dataclass
class Run:
    results: dict[str, dict[Pair, Result]] = field(default_factory=dict)
    ingest: dict[str, dict[str, float]] = field(default_factory=dict)


def metrics(ranks: Sequence[int]) -> dict[str, float]:
    """Percent; ``rank`` is 1-based, 0 when the paragraph is not in the top ``K``."""
    n = len(ranks)
    return {
        "R@1": 100 * sum(r == 1 for r in ranks) / n,
        "R@10": 100 * sum(0 < r <= K for r in ranks) / n,
        "MRR@10": 100 * sum(1 / r for r in ranks if 0 < r <= K) / n,
        "nDCG@10": 100 * sum(1 / math.log2(r + 1) for r in ranks if 0 < r <= K) / n,
    }


def rank_of(gold: int, ids: Sequence[str]) -> int:
    """1-based rank of document ``gold`` among the distinct document ids, 0 if absent."""
    distinct = list(dict.fromkeys(ids))
    return distinct.index(str(gold)) + 1 if str(gold) in distinct else 0


def parse_pairs(text: str | None, languages: Sequence[str]) -> list[Pair]:
    every = [(a, b) for b in languages for a in languages]
    if not text:
        return every
    wanted = []
    for item in text.split(","):
        sep = ">" if ">" in item else ":"
        a, _, b = item.strip().partition(sep)
        if a not in languages or b not in languages:
            sys.exit(f"--pairs {item!r}: write A>B (or A:B) with A and B in --languages")
        wanted.append((a, b))
    return wanted


async def evaluate(
    base_url: str,
    data: dict[str, XQuad],
    pairs: Sequence[Pair],
    modes: Sequence[Mode],
    sample: Sequence[int],
    concurrency: int,
    ingest_batch: int,
) -> tuple[Run, int, list[str]]:
    run = Run(results={m.label: {} for m in modes})
    targets = list(dict.fromkeys(b for _, b in pairs))
    async with RetrievalApi(base_url, connections=concurrency) as api:
        for b in targets:
            name = f"xquad-{b}"
            paragraphs = data[b].paragraphs
            started = time.perf_counter()
            await api.create_collection(name)
            chunks = await api.ingest(
                name,
                [(str(i), text) for i, text in enumerate(paragraphs)],
                max_chars=5000,
                batch=ingest_batch,
            )
            seconds = time.perf_counter() - started
            info = await api.describe(name)
            run.ingest[b] = {"paragraphs": len(paragraphs), "chunks": chunks, "seconds": seconds}
            print(
                f"ingested {b}: {len(paragraphs)} paragraphs -> {chunks} chunks in {seconds:.1f} s"
                f" ({len(paragraphs) / seconds:.1f} paragraphs/s), index {info['index_type']},"
                f" chunk languages {info['languages']}",
                flush=True,
            )
            if chunks != len(paragraphs):
                print(f"  WARNING: {chunks} chunks for {len(paragraphs)} paragraphs", flush=True)
            for a in (a for a, bb in pairs if bb == b):
                questions = [data[a].questions[i] for i in sample]
                gold = [data[a].gold[i] for i in sample]
                for mode in modes:

                    async def one(
                        q: str, mode: Mode = mode, name: str = name
                    ) -> tuple[list[str], str]:
                        return await api.search(name, q, mode.mode, K, mode.bm25_weight)

                    started = time.perf_counter()
                    replies = await bounded_map(questions, one, concurrency)
                    seconds = time.perf_counter() - started
                    ranks = [rank_of(g, ids) for g, (ids, _) in zip(gold, replies, strict=True)]
                    detected = sum(lang == b for _, lang in replies) / len(replies)
                    result = Result(metrics(ranks), seconds, len(questions), detected)
                    run.results[mode.label][(a, b)] = result
                    m = result.metrics
                    print(
                        f"  {a}>{b} {mode.label:<12} R@10 {m['R@10']:5.1f} nDCG@10"
                        f" {m['nDCG@10']:5.1f}  {len(questions) / seconds:6.1f} searches/s",
                        flush=True,
                    )
    return run, api.retried, api.errors


# ---------------------------------------------------------------------------- report


def groups(pairs: Sequence[Pair]) -> dict[str, list[Pair]]:
    """REFERENCES.md's three groups first, then the other pairs of this run."""
    found = {
        "X>en": [(a, b) for a, b in pairs if b == "en" and a != "en"],
        "en>X": [(a, b) for a, b in pairs if a == "en" and b != "en"],
        "same": [(a, b) for a, b in pairs if a == b and a != "en"],
        "en>en": [(a, b) for a, b in pairs if a == b == "en"],
        "X>Y (no en)": [(a, b) for a, b in pairs if a != b and "en" not in (a, b)],
        "all cross": [(a, b) for a, b in pairs if a != b],
    }
    return {name: members for name, members in found.items() if members}


def mean_metrics(results: dict[Pair, Result], members: Sequence[Pair]) -> dict[str, float]:
    return {m: statistics.fmean(results[p].metrics[m] for p in members) for m in METRICS}


def reference_for(group: str, members: Sequence[Pair]) -> dict[str, float] | None:
    others = {x for pair in members for x in pair} - {"en"}
    if group in REFERENCE and others == REFERENCE_LANGUAGES:
        return REFERENCE[group]
    return None


def print_tables(run: Run, modes: Sequence[Mode], pairs: Sequence[Pair]) -> dict[str, object]:
    dense = run.results.get("dense")
    for mode in modes:
        results = run.results[mode.label]
        hybrid = mode.mode == "hybrid"
        print(f"\n== {mode.label} (k={K}; percent) ==")
        head = f"{'pair':<8}" + "".join(f"{m:>9}" for m in METRICS)
        if hybrid and dense:
            head += f"{'dR@10':>8}{'dnDCG':>8}"
        print(head + f"{'q->B lang':>11}{'search/s':>10}")
        for pair in pairs:
            r = results[pair]
            line = f"{pair[0] + '>' + pair[1]:<8}" + "".join(
                f"{r.metrics[m]:>9.1f}" for m in METRICS
            )
            if hybrid and dense:
                d = dense[pair].metrics
                line += f"{r.metrics['R@10'] - d['R@10']:>+8.1f}"
                line += f"{r.metrics['nDCG@10'] - d['nDCG@10']:>+8.1f}"
            line += f"{100 * r.detected_as_b:>10.0f}%{r.queries / r.seconds:>10.1f}"
            print(line)

    print(
        "\n== summary by group (mean over pairs; percent); ref = REFERENCES.md, in-process,"
        " naive equal-weight RRF for hybrid =="
    )
    print(
        f"{'group':<12}{'mode':<13}{'R@1':>7}{'R@10':>7}{'MRR@10':>8}{'nDCG@10':>9}"
        f"{'ref R@10':>10}{'ref nDCG':>10}{'dR@10':>8}{'dnDCG':>8}{'ref dnDCG':>11}"
        f"{'worst pair dnDCG':>18}"
    )
    summary: dict[str, object] = {}
    for group, members in groups(pairs).items():
        ref = reference_for(group, members)
        rows: dict[str, object] = {}
        base = mean_metrics(dense, members) if dense else None
        for mode in modes:
            results = run.results[mode.label]
            m = mean_metrics(results, members)
            ref_r10 = ref_ndcg = ref_delta = None
            if ref is not None:
                if mode.mode == "dense":
                    ref_r10, ref_ndcg = ref["dense R@10"], ref["dense nDCG"]
                elif mode.mode == "bm25":
                    ref_ndcg = ref["bm25 nDCG"]
                else:
                    ref_r10, ref_ndcg = ref["hyb R@10"], ref["hyb nDCG"]
                    ref_delta = ref["hyb nDCG"] - ref["dense nDCG"]
            delta_r10 = delta_ndcg = worst = None
            if mode.mode == "hybrid" and base is not None and dense is not None:
                delta_r10 = m["R@10"] - base["R@10"]
                delta_ndcg = m["nDCG@10"] - base["nDCG@10"]
                worst = min(
                    results[p].metrics["nDCG@10"] - dense[p].metrics["nDCG@10"] for p in members
                )

            def cell(value: float | None, width: int, signed: bool = False) -> str:
                if value is None:
                    return " " * (width - 1) + "-"
                return f"{value:>+{width}.1f}" if signed else f"{value:>{width}.1f}"

            print(
                f"{group:<12}{mode.label:<13}{m['R@1']:>7.1f}{m['R@10']:>7.1f}"
                f"{m['MRR@10']:>8.1f}{m['nDCG@10']:>9.1f}{cell(ref_r10, 10)}{cell(ref_ndcg, 10)}"
                f"{cell(delta_r10, 8, True)}{cell(delta_ndcg, 8, True)}"
                f"{cell(ref_delta, 11, True)}{cell(worst, 18, True)}"
            )
            rows[mode.label] = {
                **m,
                "ref": {"R@10": ref_r10, "nDCG@10": ref_ndcg, "hybrid-dense nDCG": ref_delta},
                "hybrid-dense": {"R@10": delta_r10, "nDCG@10": delta_ndcg, "worst pair": worst},
            }
        summary[group] = {"pairs": [f"{a}>{b}" for a, b in members], "modes": rows}
        print()
    return summary


def rule_check(run: Run, modes: Sequence[Mode], pairs: Sequence[Pair]) -> dict[str, object]:
    """REFERENCES.md: hybrid never worse than dense across languages, gains within one."""
    dense = run.results.get("dense")
    hybrids = [m for m in modes if m.mode == "hybrid"]
    if dense is None or not hybrids:
        return {}
    cross = [p for p in pairs if p[0] != p[1]]
    same = [p for p in pairs if p[0] == p[1]]
    print(
        "== rule: hybrid never worse than dense across languages (every A!=B pair), gains"
        " within one language (every A==B pair, en included) =="
    )
    print(
        f"{'hybrid':<13}{'cross worst dnDCG':>19}{'cross worst dR@10':>19}{'cross mean dnDCG':>18}"
        f"{'same mean dnDCG':>17}{'same worst dnDCG':>18}  verdict"
    )
    out: dict[str, object] = {}
    best: tuple[float, str] | None = None
    for mode in hybrids:
        results = run.results[mode.label]

        def deltas(
            members: Sequence[Pair], metric: str, r: dict[Pair, Result] = results
        ) -> list[float]:
            return [r[p].metrics[metric] - dense[p].metrics[metric] for p in members]

        cross_nd, cross_r = deltas(cross, "nDCG@10"), deltas(cross, "R@10")
        same_nd = deltas(same, "nDCG@10")
        worst_nd = min(cross_nd, default=0.0)
        worst_r = min(cross_r, default=0.0)
        same_mean = statistics.fmean(same_nd) if same_nd else 0.0
        ok = worst_nd >= 0 and worst_r >= 0 and (not same or same_mean > 0)
        verdict = "meets the rule" if ok else "breaks the rule"
        print(
            f"{mode.label:<13}{worst_nd:>+19.2f}{worst_r:>+19.2f}"
            f"{statistics.fmean(cross_nd) if cross_nd else 0.0:>+18.2f}{same_mean:>+17.2f}"
            f"{min(same_nd, default=0.0):>+18.2f}  {verdict}"
        )
        out[mode.label] = {
            "cross_worst_ndcg": worst_nd,
            "cross_worst_r10": worst_r,
            "same_mean_ndcg": same_mean,
            "meets_rule": ok,
        }
        if ok and (best is None or same_mean > best[0]):
            best = (same_mean, mode.label)
    if best is not None:
        print(f"best hybrid setting under the rule: {best[1]} (same-language gain {best[0]:+.2f})")
    else:
        print("no hybrid setting meets the rule strictly; see the worst cross-language pairs")
    out["best"] = best[1] if best else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="XQuAD cross-language retrieval quality (HTTP)")
    parser.add_argument("--languages", default="en,de,es,zh,ar")
    parser.add_argument("--data-dir", type=Path, default=DATA / "xquad")
    parser.add_argument("--pairs", help="restrict to these pairs, e.g. 'de>en,en>de' (or de:en)")
    parser.add_argument("--questions", type=int, help="sample this many questions (same in all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--bm25-weights",
        default="",
        help="hybrid once per weight (0..1), e.g. 0.25,0.5,1.0; default: the service's own",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="searches in flight")
    parser.add_argument("--ingest-batch", type=int, default=4, help="paragraphs per request")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    missing = [x for x in languages if not (args.data_dir / f"xquad.{x}.json").exists()]
    if missing:
        sys.exit(f"no XQuAD file for {missing} in {args.data_dir}")
    pairs = parse_pairs(args.pairs, languages)
    data = {x: load_xquad(args.data_dir, x) for x in {x for p in pairs for x in p}}
    first = next(iter(data.values()))
    for x in data.values():
        if x.gold != first.gold or len(x.paragraphs) != len(first.paragraphs):
            sys.exit(f"xquad.{x.language}.json is not parallel to xquad.{first.language}.json")
    everything = list(range(len(first.questions)))
    sample = (
        sorted(random.Random(args.seed).sample(everything, args.questions))
        if args.questions and args.questions < len(everything)
        else everything
    )
    weights = [float(w) for w in args.bm25_weights.split(",") if w.strip()]
    modes = [Mode("dense", "dense"), Mode("bm25", "bm25")] + (
        [Mode(f"hybrid w={w:g}", "hybrid", w) for w in weights]
        if weights
        else [Mode("hybrid", "hybrid")]
    )

    print(f"machine: {machine_context()}")
    print(
        f"XQuAD {args.data_dir}: {len(first.paragraphs)} paragraphs, {len(sample)} of"
        f" {len(everything)} questions; {len(pairs)} pairs; modes {[m.label for m in modes]};"
        f" {args.concurrency} searches in flight"
    )
    began = time.perf_counter()
    with running_stack() as stack:
        run, retried, errors = asyncio.run(
            evaluate(
                stack.base_url, data, pairs, modes, sample, args.concurrency, args.ingest_batch
            )
        )
    wall = time.perf_counter() - began
    summary = print_tables(run, modes, pairs)
    verdict = rule_check(run, modes, pairs)
    searches = sum(r.queries for results in run.results.values() for r in results.values())
    print(
        f"\nwall time {wall:.0f} s ({wall / 60:.1f} min) for {len(run.ingest)} ingests and"
        f" {searches:,} searches; {retried} requests retried after an error"
        + (f" (first: {errors[0]})" if errors else "")
    )
    print(f"machine at the end: {machine_context()}")
    if args.json:
        doc = {
            "machine": machine_context(),
            "cpus": os.cpu_count(),
            "args": {k: str(v) for k, v in vars(args).items()},
            "questions": len(sample),
            "wall_s": wall,
            "retried": retried,
            "ingest": run.ingest,
            "pairs": {
                mode: {
                    f"{a}>{b}": {
                        **r.metrics,
                        "seconds": r.seconds,
                        "queries": r.queries,
                        "query_detected_as_paragraph_language": r.detected_as_b,
                    }
                    for (a, b), r in results.items()
                }
                for mode, results in run.results.items()
            },
            "groups": summary,
            "rule": verdict,
        }
        args.json.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
