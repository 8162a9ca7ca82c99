"""Speed of the generation service: gateway tokens/s against vLLM offline and transformers.

With the same model, the same chat prompts (the model's own chat template), the same
``--max-tokens`` and greedy decoding, one phase after another (never two at once: they
share this host's CPUs):

1. Through the gateway (Redis + ``python -m services.generation`` + ``python -m
   services.gateway``, started here and stopped by pid), OpenAI client (``openai``):
   a. ``--batch`` concurrent non-streaming ``/v1/chat/completions``: completion tokens
      (the ``usage`` each answer reports) per wall second;
   b. streaming at 1 stream (``--single-streams`` requests one after another) and at
      ``--batch`` concurrent streams: time to first token (first content delta) and time
      per output token ((last content delta - first) / (completion tokens - 1)), p50/p99.
   The stack is then stopped, which frees its memory.
2. vLLM's offline ``LLM.generate`` on the same ``--batch`` prompts (token ids from the
   same chat template) with the service's engine settings (the same dtype, eager,
   ``--max-model-len``, ``VLLM_CPU_KVCACHE_SPACE=--kv-cache-gib``), after one warm-up call,
   in a child process. The gateway's tokens/s over this one is the ratio the issue asks
   for (aim >= 0.85).
3. Hugging Face transformers ``generate``, one prompt at a time (``--hf-prompts`` of them,
   greedy, ``--hf-dtype``, ``--hf-threads`` torch threads: 1 by default, like vLLM's CPU
   worker on 2 cores, and far faster than 2 on a loaded host), in a child process: the
   service's speed-up over it.

Phases 1 and 2 run once per dtype of ``--dtypes`` (default ``float32,bfloat16``): the
worker is started with ``BABEL_GENERATION_DTYPE`` set and its fallback off, and its engine
probe's answers (``/v1/services``) are printed beside its speed, so the table shows for
each dtype both how fast and whether it answers right on this CPU. A dtype whose probe
fails there refuses to start; its row says so.

Each throughput phase runs ``--repeats`` times; the best run of each path is reported
(the host is shared: other load only ever makes a run slower; the phases run minutes
apart, so the ratios carry that noise too). ``ignore_eos`` is not part
of the HTTP API, so the prompts ask for long answers; the sides may still stop at
different lengths, hence tokens/s and each side's token count.

    .venv/bin/python bench/generation.py [--model SmolLM2-135M-Instruct] [--max-tokens 128]
        [--batch 16] [--dtypes float32,bfloat16] [--hf-prompts 4] [--skip-hf]
        [--skip-stream] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # ``bench`` as a package
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.stack import MODELS, machine_context
from services.launcher import stack as launcher
from services.launcher.redis_server import free_port
from shared.errors import BabelError

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
AIM_RATIO = 0.85
TOPICS = (
    "the history of the printing press",
    "how volcanoes form and erupt",
    "the water cycle on Earth",
    "the life of honey bees",
    "how the internet routes a message",
    "the causes of the French Revolution",
    "how vaccines train the immune system",
    "the construction of Roman aqueducts",
    "why the sky is blue",
    "the migration of monarch butterflies",
    "how a steam engine works",
    "the first journey to the Moon",
    "the rules and history of chess",
    "how plants turn sunlight into food",
    "the Silk Road and its trade",
    "how glaciers shape valleys",
)


def prompts(count: int) -> list[str]:
    """``count`` requests for long answers (so that most runs reach ``max_tokens``)."""
    return [
        f"Write a long, detailed essay about {TOPICS[i % len(TOPICS)]}. "
        "Use several paragraphs and explain every step."
        + (f" (Part {i // len(TOPICS) + 1}.)" if i >= len(TOPICS) else "")
        for i in range(count)
    ]


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def model_path(model: str) -> str:
    prepared = MODELS / model
    if prepared.is_dir():
        return str(prepared)
    if Path(model).expanduser().is_dir():
        return str(Path(model).expanduser())
    sys.exit(f"model {model!r} is neither in {MODELS} nor a folder; babelstack models prepare")


def served_name(model: str) -> str:
    return Path(model.rstrip("/")).name


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``q`` in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Throughput:
    path: str
    dtype: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    runs: list[float] = field(default_factory=list)
    """tokens/s of every repeat; the row keeps the best."""

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds


@dataclass
class Latency:
    streams: int
    requests: int
    ttft_s: list[float]
    tpot_s: list[float]
    completion_tokens: int
    seconds: float


# ---------------------------------------------------------------------------- gateway


@contextmanager
def generation_stack(env: dict[str, str], ready_timeout_s: float) -> Iterator[str]:
    """Redis + generation worker + gateway (the launcher's ``start_stack``); yields the URL."""
    # A SIGTERM must still stop what was started: turn it into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="babel-bench-generation-"))
    config = launcher.StackConfig(
        host="127.0.0.1",
        port=free_port(),
        services=("generation",),
        state_dir=folder,
        ready_timeout_s=ready_timeout_s,
        grace_s=30.0,
    )
    started = time.perf_counter()
    stack = launcher.start_stack(config, env, print)
    ok = False
    try:
        print(f"stack ready in {time.perf_counter() - started:.1f} s at {stack.base_url}")
        yield stack.base_url
        ok = True
    finally:
        began = time.perf_counter()
        stack.stop()
        print(f"stack stopped in {time.perf_counter() - began:.1f} s")
        if ok:  # keep the logs when something failed
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"logs kept in {folder / 'logs'}")


async def _gateway_phases(
    base_url: str, served: str, args: argparse.Namespace
) -> tuple[Throughput, list[Latency]]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(
        base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=args.timeout_s
    )
    batch = prompts(args.batch)

    async def complete(prompt: str) -> tuple[int, int]:
        reply = await client.chat.completions.create(
            model=served,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=args.max_tokens,
            temperature=0.0,
            seed=0,
        )
        assert reply.usage is not None
        return reply.usage.prompt_tokens, reply.usage.completion_tokens

    async def stream(prompt: str) -> tuple[float, float, float, int]:
        """(start, first content delta, last content delta, completion tokens)."""
        start = time.perf_counter()
        first = last = 0.0
        tokens = 0
        events = await client.chat.completions.create(
            model=served,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=args.max_tokens,
            temperature=0.0,
            seed=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in events:
            if chunk.choices and chunk.choices[0].delta.content:
                last = time.perf_counter()
                first = first or last
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return start, first, last, tokens

    try:
        await complete("Say hello.")  # warm-up: connections, first engine step
        result: Throughput | None = None
        for _ in range(args.repeats):
            began = time.perf_counter()
            counts = await asyncio.gather(*(complete(p) for p in batch))
            seconds = time.perf_counter() - began
            run = Throughput(
                f"gateway ({args.dtype})",
                args.dtype,
                len(batch),
                sum(c[0] for c in counts),
                sum(c[1] for c in counts),
                seconds,
            )
            print(f"  gateway x{len(batch)}: {run.completion_tokens} tokens in {seconds:.2f} s")
            runs = [*(result.runs if result else []), run.tokens_per_s]
            if result is None or run.tokens_per_s > result.tokens_per_s:
                result = run
            result.runs = runs
        assert result is not None
        latencies: list[Latency] = []
        if not args.skip_stream:
            for streams in (1, args.batch):
                began = time.perf_counter()
                if streams == 1:
                    singles = prompts(args.single_streams)
                    samples = [await stream(p) for p in singles]
                else:
                    samples = list(await asyncio.gather(*(stream(p) for p in batch)))
                seconds = time.perf_counter() - began
                latency = Latency(
                    streams=streams,
                    requests=len(samples),
                    ttft_s=[first - start for start, first, _, _ in samples],
                    tpot_s=[
                        (last - first) / (tokens - 1)
                        for _, first, last, tokens in samples
                        if tokens > 1
                    ],
                    completion_tokens=sum(s[3] for s in samples),
                    seconds=seconds,
                )
                latencies.append(latency)
                print(
                    f"  {streams} stream(s): {latency.requests} requests, "
                    f"{latency.completion_tokens} tokens in {seconds:.2f} s"
                )
        return result, latencies
    finally:
        await client.close()


def probe_answers(base_url: str) -> str:
    """The generation worker's engine probe, as its heartbeat reports it (``/v1/services``)."""
    import httpx

    services = httpx.get(f"{base_url}/v1/services", timeout=30).json()["services"]
    checks = [c for s in services for w in s["workers"] for c in w.get("checks", [])]
    return "; ".join(f"{'passed' if c['passed'] else 'FAILED'}: {c['detail']}" for c in checks)


def run_gateway(
    args: argparse.Namespace, path: str
) -> tuple[Throughput | None, list[Latency], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BABEL_") and k != "REDIS_URL"}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "BABEL_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
            "BABEL_GENERATION_MODEL": path,
            "BABEL_GENERATION_MAX_MODEL_LEN": str(args.max_model_len),
            "BABEL_GENERATION_KV_CACHE_GIB": str(args.kv_cache_gib),
            "BABEL_GENERATION_SERVED_NAME": served_name(args.model),
            "BABEL_GENERATION_DTYPE": args.dtype,
            "BABEL_GENERATION_DTYPE_FALLBACK": "false",
        }
    )
    try:
        with generation_stack(env, args.ready_timeout_s) as base_url:
            probe = probe_answers(base_url)
            print(f"  engine probe ({args.dtype}): {probe}")
            result, latencies = asyncio.run(
                _gateway_phases(base_url, served_name(args.model), args)
            )
            return result, latencies, probe
    except BabelError as exc:  # the worker refused: its probe failed in this dtype
        print(f"  the {args.dtype} stack did not start: {exc}")
        return None, [], f"refused to start: {exc}"


# ---------------------------------------------------------------------------- children


def _chat_ids(tokenizer: Any, prompt: str) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages(prompt), tokenize=True, add_generation_prompt=True
    )
    ids = encoded if isinstance(encoded, list) else encoded["input_ids"]
    return [int(i) for i in ids]


def child_offline(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """vLLM ``LLM.generate`` on the batch, the service's engine settings; best of repeats."""
    os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(args.kv_cache_gib)
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    began = time.perf_counter()
    llm = LLM(
        model=path,
        dtype=args.dtype,
        max_model_len=args.max_model_len,
        enforce_eager=True,
        max_num_seqs=64,
        seed=0,
    )
    load_s = time.perf_counter() - began
    tokenizer = llm.get_tokenizer()
    batch = [TokensPrompt(prompt_token_ids=_chat_ids(tokenizer, p)) for p in prompts(args.batch)]
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0, seed=0)
    warm_up = TokensPrompt(prompt_token_ids=_chat_ids(tokenizer, "Say hello."))
    llm.generate([warm_up], params, use_tqdm=False)
    runs: list[tuple[float, int]] = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        outputs = llm.generate(batch, params, use_tqdm=False)
        seconds = time.perf_counter() - began
        runs.append((seconds, sum(len(o.outputs[0].token_ids) for o in outputs)))
    seconds, tokens = min(runs, key=lambda r: r[0] / max(r[1], 1))
    return {
        "load_s": load_s,
        "prompt_tokens": sum(len(p["prompt_token_ids"]) for p in batch),
        "completion_tokens": tokens,
        "seconds": seconds,
        "runs": [t / s for s, t in runs],
    }


def child_hf(args: argparse.Namespace, path: str) -> dict[str, Any]:
    """transformers ``generate``, greedy, one prompt at a time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.hf_threads)
    began = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.hf_dtype))
    model.eval()
    load_s = time.perf_counter() - began

    def generate(prompt: str, max_tokens: int) -> tuple[int, int, float]:
        ids = torch.tensor([_chat_ids(tokenizer, prompt)])
        began = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        return ids.shape[1], out.shape[1] - ids.shape[1], time.perf_counter() - began

    generate("Say hello.", 8)  # warm-up
    rows = [generate(p, args.max_tokens) for p in prompts(args.batch)[: args.hf_prompts]]
    return {
        "load_s": load_s,
        "threads": torch.get_num_threads(),
        "prompt_tokens": sum(r[0] for r in rows),
        "completion_tokens": sum(r[1] for r in rows),
        "seconds": sum(r[2] for r in rows),
        "runs": [r[1] / r[2] for r in rows],
    }


def run_child(kind: str, argv: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """This script again with ``--child kind``: its memory is gone when the phase ends."""
    with tempfile.TemporaryDirectory(prefix="babel-bench-generation-") as folder:
        out, log = Path(folder) / "result.json", Path(folder) / "child.log"
        command = [sys.executable, __file__, *argv, "--child", kind, "--child-out", str(out)]
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
            try:
                code = process.wait(timeout=timeout_s)
            except BaseException:
                process.kill()
                process.wait()
                raise
        if code != 0 or not out.is_file():
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{kind} child exited with {code}; last output:\n{tail}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# ---------------------------------------------------------------------------- report


def report(
    rows: list[Throughput],
    latencies: dict[str, list[Latency]],
    probes: dict[str, str],
    args: argparse.Namespace,
) -> None:
    print(
        f"\nmodel {args.model}, max_tokens {args.max_tokens}, greedy; "
        f"best of {args.repeats} run(s) for the batched rows"
    )
    print(
        f"{'path':<34}{'requests':>9}{'prompt tok':>11}{'compl. tok':>11}{'seconds':>9}"
        f"{'tokens/s':>10}{'vs offline':>11}"
    )
    for row in rows:
        offline = _row(rows, "vLLM offline", row.dtype)
        versus = f"{row.tokens_per_s / offline.tokens_per_s:>10.2f}x" if offline else f"{'-':>11}"
        print(
            f"{row.path:<34}{row.requests:>9}{row.prompt_tokens:>11}{row.completion_tokens:>11}"
            f"{row.seconds:>9.2f}{row.tokens_per_s:>10.1f}{versus}"
        )
    hf = next((r for r in rows if r.path.startswith("transformers")), None)
    for dtype in dtypes(args):
        gateway, offline = _row(rows, "gateway", dtype), _row(rows, "vLLM offline", dtype)
        if gateway and offline:
            ratio = gateway.tokens_per_s / offline.tokens_per_s
            verdict = "reached" if ratio >= AIM_RATIO else "NOT reached"
            print(f"{dtype}: gateway / vLLM offline = {ratio:.2f} (aim >= {AIM_RATIO}: {verdict})")
        if gateway and hf:
            speedup = gateway.tokens_per_s / hf.tokens_per_s
            print(f"{dtype}: gateway / transformers one at a time = {speedup:.1f}x")
    gateways = [r for r in rows if r.path.startswith("gateway")]
    if len(gateways) > 1:
        base = gateways[-1]
        for row in gateways[:-1]:
            print(
                f"gateway {row.dtype} / gateway {base.dtype} tokens/s = "
                f"{row.tokens_per_s / base.tokens_per_s:.2f}"
            )
    print("\nengine probe per dtype (greedy known answers through the served engine)")
    for dtype, probe in probes.items():
        print(f"  {dtype:<9} {probe}")
    for row in rows:
        if len(row.runs) > 1:
            runs = ", ".join(f"{x:.1f}" for x in row.runs)
            what = "prompt" if row.path.startswith("transformers") else "run"
            print(f"  {row.path}: tokens/s of each {what}: {runs}")
    for dtype, lats in latencies.items():
        if not lats:
            continue
        print(f"\nstreaming through the gateway, {dtype} (ms)")
        print(
            f"{'streams':>8}{'requests':>9}{'TTFT p50':>10}{'TTFT p99':>10}"
            f"{'TPOT p50':>10}{'TPOT p99':>10}{'tokens/s':>10}"
        )
        for lat in lats:
            ms = [
                percentile(values, q) * 1000
                for values in (lat.ttft_s, lat.tpot_s)
                for q in (50, 99)
            ]
            print(
                f"{lat.streams:>8}{lat.requests:>9}{''.join(f'{x:>10.1f}' for x in ms)}"
                f"{lat.completion_tokens / lat.seconds:>10.1f}"
            )


def _row(rows: list[Throughput], prefix: str, dtype: str) -> Throughput | None:
    return next((r for r in rows if r.path.startswith(prefix) and r.dtype == dtype), None)


def dtypes(args: argparse.Namespace) -> list[str]:
    return [d.strip() for d in args.dtypes.split(",") if d.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="name in the model cache, or folder")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16, help="concurrent requests")
    parser.add_argument("--single-streams", type=int, default=8, help="requests at 1 stream")
    parser.add_argument(
        "--dtypes", default="float32,bfloat16", help="engine dtypes, comma-separated"
    )
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)  # a child's
    parser.add_argument("--hf-prompts", type=int, default=4)
    parser.add_argument("--hf-dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument(
        "--hf-threads",
        type=int,
        default=1,
        help="torch threads (vLLM's CPU worker also runs one on 2 cores, one core reserved)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="runs of each batched phase")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--kv-cache-gib", type=int, default=1)
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--ready-timeout-s", type=float, default=600.0)
    parser.add_argument("--timeout-s", type=float, default=900.0, help="per request / child")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--child", choices=("offline", "hf"), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    path = model_path(args.model)
    if args.child:
        result = child_offline(args, path) if args.child == "offline" else child_hf(args, path)
        args.child_out.write_text(json.dumps(result))
        return
    # The children get the same options (minus ours); ``--json`` stays with the parent.
    argv = list(sys.argv[1:])
    if "--json" in argv:
        i = argv.index("--json")
        del argv[i : i + 2]
    print(f"start: {machine_context()}")
    rows: list[Throughput] = []
    latencies: dict[str, list[Latency]] = {}
    probes: dict[str, str] = {}
    for dtype in dtypes(args):
        args.dtype = dtype
        print(f"[1/3] gateway, {dtype}: {args.batch} concurrent requests, then streams")
        gateway, latencies[dtype], probes[dtype] = run_gateway(args, path)
        if gateway is not None:
            rows.append(gateway)
        if not args.skip_offline:
            print(f"[2/3] vLLM offline LLM.generate, {dtype}: {args.batch} prompts in one call")
            result = run_child("offline", [*argv, "--dtype", dtype], args.timeout_s)
            print(f"  engine ready in {result['load_s']:.1f} s")
            rows.append(
                Throughput(
                    f"vLLM offline LLM.generate ({dtype})",
                    dtype,
                    args.batch,
                    result["prompt_tokens"],
                    result["completion_tokens"],
                    result["seconds"],
                    result["runs"],
                )
            )
    if not args.skip_hf:
        print(f"[3/3] transformers generate: {args.hf_prompts} prompts one at a time")
        result = run_child("hf", argv, args.timeout_s)
        print(f"  model loaded in {result['load_s']:.1f} s; torch threads {result['threads']}")
        rows.append(
            Throughput(
                f"transformers ({args.hf_dtype}, {result['threads']} thr)",
                args.hf_dtype,
                args.hf_prompts,
                result["prompt_tokens"],
                result["completion_tokens"],
                result["seconds"],
                result["runs"],
            )
        )
    report(rows, latencies, probes, args)
    print(f"\nend: {machine_context()}")
    if args.json:
        payload = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "throughput": [{**asdict(r), "tokens_per_s": r.tokens_per_s} for r in rows],
            "probes": probes,
            "latency": [
                {
                    **asdict(lat),
                    "dtype": dtype,
                    "ttft_p50_s": percentile(lat.ttft_s, 50),
                    "ttft_p99_s": percentile(lat.ttft_s, 99),
                    "tpot_p50_s": percentile(lat.tpot_s, 50),
                    "tpot_p99_s": percentile(lat.tpot_s, 99),
                }
                for dtype, lats in latencies.items()
                for lat in lats
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
