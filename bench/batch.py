"""Batch jobs against direct calls: sentiment items/s, chat tokens/s, interactive latency.

One phase after another (they share this host's CPUs), each on a fresh embedded stack
(the launcher's ``start_stack``: Redis, the service, the Celery batch worker, the gateway):

1. Sentiment (tasks service): ``--texts`` short real texts (Tatoeba + UMSAB), ``--per-line``
   texts a request. Directly: the same requests to ``/v1/sentiment``, ``--concurrency`` at
   once. As a batch: one JSONL line per request, submitted with the ``openai`` client and
   waited for. Items/s of both and their ratio (aim >= 0.8).
2. Interactive latency: ``--probes`` single-text ``/v1/sentiment`` calls, one after
   another, on the idle stack and again while a sentiment batch of the same size runs;
   p50/p99 of both.
3. Chat (generation service, ``--model``): ``--prompts`` chat lines (the prompts of
   ``bench/generation.py``), ``--max-tokens`` each, greedy, as a batch; completion tokens
   (the ``usage`` of each output line) per second from submit to completed, against vLLM's
   offline ``LLM.generate`` on the same prompts in a child process (``bench/generation.py``'s)
   with the service's dtype. Ratio (aim >= 0.8).

    .venv/bin/python bench/batch.py [--texts 10000] [--per-line 16] [--prompts 256]
        [--max-tokens 64] [--skip-chat] [--skip-sentiment]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import openai

from bench.generation import messages, model_path, percentile, prompts, run_child, served_name
from bench.stack import machine_context, real_sentences
from services.launcher import stack as launcher
from services.launcher.redis_server import free_port

AIM_RATIO = 0.8
FINAL = {"completed", "failed", "expired", "cancelled"}


@contextmanager
def stack(services: tuple[str, ...], env: dict[str, str], timeout_s: float) -> Iterator[str]:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="babel-bench-batch-"))
    config = launcher.StackConfig(
        host="127.0.0.1",
        port=free_port(),
        services=services,
        state_dir=folder,
        ready_timeout_s=timeout_s,
        grace_s=30.0,
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BABEL_")}
    environ.pop("REDIS_URL", None)
    # A loaded host may take long over a request: the direct calls must not time out.
    environ.update({"BABEL_LOG_LEVEL": "WARNING", "BABEL_GATEWAY_REQUEST_TIMEOUT_S": "600", **env})
    running = launcher.start_stack(config, environ, print)
    ok = False
    try:
        yield running.base_url
        ok = True
    finally:
        running.stop()
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"logs kept in {folder / 'logs'}")


def run_batch(base_url: str, endpoint: str, bodies: Sequence[dict[str, Any]]) -> tuple[float, list]:
    """Submit one line per body, wait; (seconds from upload to completed, output lines)."""
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", timeout=600)
    content = "".join(
        json.dumps({"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": body}) + "\n"
        for i, body in enumerate(bodies)
    ).encode()
    began = time.perf_counter()
    file = client.files.create(file=("bench.jsonl", content), purpose="batch")
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )
    while batch.status not in FINAL:
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    seconds = time.perf_counter() - began
    if batch.status != "completed" or batch.request_counts.failed:  # type: ignore[union-attr]
        raise RuntimeError(f"batch ended {batch.status}: {batch.request_counts}")
    assert batch.output_file_id is not None
    lines = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    return seconds, lines


async def run_direct(
    base_url: str, path: str, bodies: Sequence[dict[str, Any]], concurrency: int
) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one(body: dict[str, Any]) -> None:
            async with gate:
                response = await client.post(path, json=body)
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(one(body) for body in bodies))
        return time.perf_counter() - began


def probe_latency(base_url: str, texts: Sequence[str], stop: float | None = None) -> list[float]:
    """Single-text /v1/sentiment calls one after another (until ``stop``, if given)."""
    took = []
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for text in texts:
            if stop is not None and time.monotonic() > stop:
                break
            began = time.perf_counter()
            client.post("/v1/sentiment", json={"q": text}).raise_for_status()
            took.append(time.perf_counter() - began)
    return took


def sentiment_phase(args: argparse.Namespace) -> None:
    texts = real_sentences()[: args.texts]
    bodies = [{"q": texts[i : i + args.per_line]} for i in range(0, len(texts), args.per_line)]
    probes = real_sentences(seed=1)[: args.probes]
    env = {"BABEL_TRANSLATION_BACKEND": "off", "BABEL_BATCH_CHUNK_LINES": str(args.chunk_lines)}
    with stack(("tasks",), env, args.ready_timeout_s) as base:
        probe_latency(base, probes[:5])  # warm-up
        idle = probe_latency(base, probes)
        direct_s = asyncio.run(run_direct(base, "/v1/sentiment", bodies, args.concurrency))
        batch_s, lines = run_batch(base, "/v1/sentiment", bodies)
        assert sum(len(x["response"]["body"]["results"]) for x in lines) == len(texts)
        # Interactive calls while a batch of the same size runs.
        client = openai.OpenAI(base_url=base + "/v1", api_key="unused")
        content = "".join(
            json.dumps({"custom_id": f"p{i}", "method": "POST", "url": "/v1/sentiment", "body": b})
            + "\n"
            for i, b in enumerate(bodies)
        ).encode()
        file = client.files.create(file=("load.jsonl", content), purpose="batch")
        running = client.batches.create(
            input_file_id=file.id,
            endpoint="/v1/sentiment",  # type: ignore[arg-type]
            completion_window="24h",
        )
        while client.batches.retrieve(running.id).status == "validating":
            time.sleep(0.1)
        busy = probe_latency(base, probes, stop=time.monotonic() + batch_s)
        client.batches.cancel(running.id)
    direct_rate, batch_rate = len(texts) / direct_s, len(texts) / batch_s
    ratio = batch_rate / direct_rate
    print(
        f"\nsentiment: {len(texts)} texts, {args.per_line} per request/line "
        f"({len(bodies)} requests), direct at {args.concurrency} concurrent"
    )
    print(f"  direct /v1/sentiment  {direct_s:8.1f} s  {direct_rate:8.1f} items/s")
    print(f"  batch                 {batch_s:8.1f} s  {batch_rate:8.1f} items/s")
    verdict = "reached" if ratio >= AIM_RATIO else "NOT reached"
    print(f"  batch / direct = {ratio:.2f} (aim >= {AIM_RATIO}: {verdict})")
    for name, values in (("idle stack", idle), ("during a batch", busy)):
        ms = [v * 1000 for v in values]
        print(
            f"  interactive /v1/sentiment, {name:<15} n={len(ms):<4} "
            f"p50 {statistics.median(ms):7.1f} ms  p99 {percentile(ms, 99):7.1f} ms"
        )


def chat_phase(args: argparse.Namespace) -> None:
    model_path(args.model)  # exits with a hint when the model is not prepared
    bodies = [
        {
            "model": served_name(args.model),
            "messages": messages(p),
            "max_tokens": args.max_tokens,
            "temperature": 0,
        }
        for p in prompts(args.prompts)
    ]
    env = {
        "BABEL_GENERATION_MODEL": args.model,
        "BABEL_GENERATION_DTYPE": args.dtype,
        "BABEL_GENERATION_MAX_MODEL_LEN": "2048",
        "BABEL_BATCH_CHUNK_LINES": str(args.prompts),
        "BABEL_WORKER_CONCURRENCY": str(max(64, args.prompts)),
        "BABEL_BATCH_GENERATION_LINE_CONCURRENCY": str(args.prompts),
        "BABEL_BATCH_GENERATION_QUEUE_LIMIT": str(args.prompts),  # no other traffic here
    }
    with stack(("generation",), env, args.ready_timeout_s) as base:
        run_batch(base, "/v1/chat/completions", bodies[:2])  # warm-up
        batch_s, lines = run_batch(base, "/v1/chat/completions", bodies)
    tokens = sum(x["response"]["body"]["usage"]["completion_tokens"] for x in lines)
    argv = [
        "--model", args.model, "--batch", str(args.prompts), "--max-tokens",
        str(args.max_tokens), "--dtype", args.dtype, "--repeats", "1",
    ]  # fmt: skip
    offline = run_child("offline", argv, timeout_s=1800)
    batch_rate = tokens / batch_s
    offline_rate = offline["completion_tokens"] / offline["seconds"]
    ratio = batch_rate / offline_rate
    print(f"\nchat: {args.prompts} lines of {args.model}, max_tokens {args.max_tokens}, greedy")
    print(f"  batch            {batch_s:8.1f} s  {tokens:7d} tokens  {batch_rate:8.1f} tokens/s")
    print(
        f"  vLLM offline     {offline['seconds']:8.1f} s  {offline['completion_tokens']:7d} tokens"
        f"  {offline_rate:8.1f} tokens/s"
    )
    verdict = "reached" if ratio >= AIM_RATIO else "NOT reached"
    print(f"  batch / offline = {ratio:.2f} (aim >= {AIM_RATIO}: {verdict})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--per-line", type=int, default=16, help="texts per request and line")
    parser.add_argument("--concurrency", type=int, default=16, help="direct requests at once")
    parser.add_argument("--chunk-lines", type=int, default=64)
    parser.add_argument("--probes", type=int, default=200, help="interactive calls")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--skip-sentiment", action="store_true")
    parser.add_argument("--skip-chat", action="store_true")
    parser.add_argument("--ready-timeout-s", type=float, default=600.0)
    args = parser.parse_args(argv)
    print(f"start: {machine_context()}")
    if not args.skip_sentiment:
        sentiment_phase(args)
    if not args.skip_chat:
        chat_phase(args)


if __name__ == "__main__":
    main()
