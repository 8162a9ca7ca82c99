"""Translation quality and speed of the ``llm`` backend on Tatoeba, through the HTTP API.

For each of deu, fra, spa, jpn, both directions (X -> en and en -> X), the first ``-n``
pairs of ``bench/data/tatoeba`` are translated with ``POST /v1/translate`` (source
given, plain text; ``--batch`` texts a request) and scored with sacrebleu: chrF
(defaults) and BLEU (13a tokens; characters for Japanese output). REFERENCES.md's chrF of
the same model called in-process stands beside ours; sentences/s is per direction
(wall clock of its requests).

Starts its own Redis + generation worker (``--model``, default Qwen2.5-Coder-1.5B-Instruct
from the model cache) + tasks worker (``llm`` backend) + gateway, or uses a running
gateway with ``--url``.

    .venv/bin/python bench/translation_eval.py [-n 100] [--languages deu,fra,spa,jpn]
        [--model Qwen2.5-Coder-1.5B-Instruct] [--url http://127.0.0.1:8080] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package

from bench.services_stack import DATA, services_stack

CODES = {"deu": "de", "fra": "fr", "spa": "es", "jpn": "ja", "eng": "en"}
# REFERENCES.md: Qwen2.5-Coder-1.5B-Instruct in-process, first 100 pairs, chrF.
REFERENCE_CHRF = {
    ("deu", "eng"): 58.2, ("fra", "eng"): 56.0, ("spa", "eng"): 61.9, ("jpn", "eng"): 46.6,
    ("eng", "deu"): 46.8, ("eng", "fra"): 49.3, ("eng", "spa"): 52.7, ("eng", "jpn"): 19.5,
}  # fmt: skip


@dataclass
class Row:
    source: str
    target: str
    pairs: int
    chrf: float
    bleu: float
    seconds: float
    reference_chrf: float | None

    @property
    def per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0


def load_pairs(language: str, n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` (language, English) pairs."""
    stem = DATA / "tatoeba" / f"tatoeba.{language}-eng"
    foreign = Path(f"{stem}.{language}").read_text(encoding="utf-8").splitlines()[:n]
    english = Path(f"{stem}.eng").read_text(encoding="utf-8").splitlines()[:n]
    return foreign, english


def translate(
    client: httpx.Client, texts: list[str], source: str, target: str, batch: int
) -> list[str]:
    out: list[str] = []
    for start in range(0, len(texts), batch):
        body = {"texts": texts[start : start + batch], "source": source, "target": target}
        response = client.post("/v1/translate", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        out.extend(t["text"] for t in response.json()["translations"])
    return out


def score(hypotheses: list[str], references: list[str], target: str) -> tuple[float, float]:
    import sacrebleu

    chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
    tokenize = "char" if target == "jpn" else "13a"
    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score
    return chrf, bleu


def evaluate(base_url: str, languages: list[str], n: int, batch: int) -> list[Row]:
    rows: list[Row] = []
    with httpx.Client(base_url=base_url, timeout=1_800.0) as client:
        for language in languages:
            foreign, english = load_pairs(language, n)
            for source, target, texts, references in (
                (language, "eng", foreign, english),
                ("eng", language, english, foreign),
            ):
                started = time.perf_counter()
                hypotheses = translate(client, texts, CODES[source], CODES[target], batch)
                seconds = time.perf_counter() - started
                chrf, bleu = score(hypotheses, references, target)
                row = Row(
                    source, target, len(texts), chrf, bleu, seconds,
                    REFERENCE_CHRF.get((source, target)),
                )  # fmt: skip
                rows.append(row)
                print(
                    f"  {source}->{target}: chrF {chrf:5.1f}  BLEU {bleu:5.1f}  "
                    f"{row.per_second:5.2f} sentences/s   e.g. {hypotheses[0]!r}",
                    flush=True,
                )
    return rows


def report(rows: list[Row], model: str, n: int) -> None:
    print(f"\nTatoeba, first {n} pairs a direction, llm backend ({model}) through /v1/translate")
    print(f"{'direction':<10} {'chrF':>6} {'ref chrF':>9} {'delta':>6} {'BLEU':>6} {'sent/s':>7}")
    for row in rows:
        ref = row.reference_chrf
        delta = f"{row.chrf - ref:+6.1f}" if ref is not None else "     -"
        ref_text = f"{ref:9.1f}" if ref is not None else "        -"
        print(
            f"{row.source + '->' + row.target:<10} {row.chrf:6.1f} {ref_text} {delta} "
            f"{row.bleu:6.1f} {row.per_second:7.2f}"
        )
    total_pairs = sum(r.pairs for r in rows)
    total_s = sum(r.seconds for r in rows)
    print(f"all: {total_pairs} sentences in {total_s:.0f} s = {total_pairs / total_s:.2f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="pairs a direction (the first N)")
    parser.add_argument("--languages", default="deu,fra,spa,jpn")
    parser.add_argument("--model", default="Qwen2.5-Coder-1.5B-Instruct")
    parser.add_argument("--batch", type=int, default=50, help="texts a request")
    parser.add_argument("--url", help="a running gateway (else a stack is started)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    env = {
        "BABEL_GENERATION_MODEL": args.model,
        "BABEL_GENERATION_MAX_MODEL_LEN": "2048",
        "BABEL_GATEWAY_TRANSLATE_TIMEOUT_S": "1800",
        "BABEL_GATEWAY_REQUEST_TIMEOUT_S": "60",
    }
    stack = nullcontext(args.url) if args.url else services_stack(("generation", "tasks"), env)
    with stack as base_url:
        rows = evaluate(base_url, languages, args.n, args.batch)
    report(rows, args.model, args.n)
    if args.json:
        rows_out = [asdict(r) | {"sentences_per_s": r.per_second} for r in rows]
        args.json.write_text(json.dumps(rows_out, indent=2))


if __name__ == "__main__":
    main()
