"""Interactive calls while generation is busy: the launcher's core plan on and off.

Starts the embedded stack (the launcher's ``start_stack``: Redis, generation, tasks, gateway)
twice in one run, once with ``share_cores=False`` (vLLM binds its threads as it likes and
torch in the tasks worker takes every core) and once with the plan of
:mod:`services.launcher.cores`. In each, it measures:

- calm: ``/v1/sentiment`` calls of 64 tweets, one after another, nothing else running;
- busy: the same calls while ``--streams`` clients keep generating (chat, long answers);
  the generation tokens/s during that window is printed beside them.

Usage: ``python -m bench.shared_cores [--calls 12] [--streams 2]
[--model SmolLM2-135M-Instruct]``. The numbers depend on the host's load: the line of
machine context comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.stack import machine_context, real_sentences
from services.launcher.redis_server import free_port
from services.launcher.stack import StackConfig, start_stack

SERVICES = ("generation", "tasks")


@dataclass
class Phase:
    latencies: list[float]
    errors: int
    tokens_per_s: float | None = None

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@contextmanager
def stack(share_cores: bool, model: str) -> Iterator[str]:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = tempfile.mkdtemp(prefix="babel-cores-")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {"HF_HUB_OFFLINE": "1", "BABEL_LOG_LEVEL": "WARNING", "BABEL_GENERATION_MODEL": model}
    )
    config = StackConfig(
        host="127.0.0.1",
        port=free_port(),
        services=SERVICES,
        state_dir=Path(folder),
        ready_timeout_s=600.0,
        share_cores=share_cores,
    )
    running = start_stack(config, env, print)
    try:
        yield running.base_url
    finally:
        running.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def sentiment_calls(
    session: aiohttp.ClientSession, base: str, texts: list[str], calls: int
) -> Phase:
    phase = Phase([], 0)
    for i in range(calls):
        batch = texts[i * 64 : (i + 1) * 64]
        began = time.perf_counter()
        async with session.post(f"{base}/v1/sentiment", json={"q": batch}) as response:
            await response.read()
            if response.status != 200:
                phase.errors += 1
                continue
        phase.latencies.append(time.perf_counter() - began)
    return phase


async def keep_generating(
    session: aiohttp.ClientSession, base: str, stop: asyncio.Event, tokens: list[int]
) -> None:
    body = {
        "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}],
        "max_tokens": 256,
        "temperature": 0.8,
    }
    while not stop.is_set():
        async with session.post(f"{base}/v1/chat/completions", json=body) as response:
            payload = json.loads(await response.read())
            if response.status == 200:
                tokens.append(int(payload["usage"]["completion_tokens"]))


async def measure(base: str, texts: list[str], calls: int, streams: int) -> dict[str, Phase]:
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await sentiment_calls(session, base, texts, 2)  # warm up
        calm = await sentiment_calls(session, base, texts, calls)
        stop, tokens = asyncio.Event(), list[int]()
        generators = [
            asyncio.create_task(keep_generating(session, base, stop, tokens))
            for _ in range(streams)
        ]
        await asyncio.sleep(5.0)  # generation is up to speed
        began, counted = time.perf_counter(), sum(tokens)
        busy = await sentiment_calls(session, base, texts, calls)
        busy.tokens_per_s = (sum(tokens) - counted) / (time.perf_counter() - began)
        stop.set()
        await asyncio.gather(*generators)
    return {"calm": calm, "busy": busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    args = parser.parse_args()
    print(machine_context())
    texts = real_sentences()[: 64 * (args.calls + 2)]
    results = {}
    for share in (False, True):
        with stack(share, args.model) as base:
            results[share] = asyncio.run(measure(base, texts, args.calls, args.streams))
    print(f"\n/v1/sentiment, 64 tweets a call, {args.calls} calls; {args.streams} chat streams")
    print(f"{'':28}{'plan off':>12}{'plan on':>12}{'on/off':>9}")
    rows = [
        ("calm p50 s", lambda r: r["calm"].pct(50)),
        ("calm p99 s", lambda r: r["calm"].pct(99)),
        ("busy p50 s", lambda r: r["busy"].pct(50)),
        ("busy p99 s", lambda r: r["busy"].pct(99)),
        ("busy errors", lambda r: float(r["busy"].errors)),
        ("generation tokens/s (busy)", lambda r: r["busy"].tokens_per_s or 0.0),
    ]
    for label, value in rows:
        off, on = value(results[False]), value(results[True])
        ratio = f"{on / off:.2f}" if off else "-"
        print(f"{label:28}{off:>12.2f}{on:>12.2f}{ratio:>9}")


if __name__ == "__main__":
    main()
