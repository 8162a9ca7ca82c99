"""The engine's known-answer probe, and the choice of dtype it settles.

Before the worker reports ready it asks its own engine — the dtype, kernels and code path
that serve users — a few greedy questions with known answers. On some CPUs (AMX,
AVX512-BF16) vLLM's bfloat16 kernels answer nonsense for some models (see
``docs/vllm-cpu-notes.md``), so a dtype whose answers are wrong is not served: the engine is
rebuilt with the next dtype (float32), with a warning that says why. When no dtype answers
right the worker refuses to become ready, and its error names the model, the dtypes tried,
their answers and the CPU's flags.

Pure of vLLM: the engine is anything with ``start(dtype)``, ``answer(prompt, max_tokens)``
and ``close()``, so the decision is unit-tested with a fake engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.generation.settings import EngineDtype, GenerationSettings
from shared.cpu_flags import describe_cpu
from shared.errors import BabelError, ErrorCode
from shared.messages.system import SelfCheck
from shared.models.cache import ChatCheck
from shared.models.llm_sources import LLM_SOURCES
from shared.models.llm_verify import CAPITAL_OF_FRANCE, ChatPrompt, all_passed, judge
from shared.telemetry import get_logger

log = get_logger(__name__)

CHECK_NAME = "engine-probe"
FALLBACK_DTYPE: EngineDtype = "float32"
"""The dtype measured correct for both default models on every CPU of our kind."""


class ProbedEngine(Protocol):
    async def start(self, dtype: EngineDtype) -> None: ...

    async def answer(self, prompt: str, max_tokens: int) -> str: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What one dtype answered."""

    dtype: EngineDtype
    checks: tuple[ChatCheck, ...]
    probe_seconds: float

    @property
    def passed(self) -> bool:
        return all_passed(self.checks)

    def answers(self) -> str:
        return "; ".join(
            f"{c.prompt!r} -> {c.answer!r} ({'ok' if c.passed else f'expected {c.expected}'})"
            for c in self.checks
        )


def dtypes_to_try(first: EngineDtype, *, fallback: bool) -> tuple[EngineDtype, ...]:
    """``first``, then float32 when allowed and not tried already."""
    if fallback and first not in (FALLBACK_DTYPE, "float"):
        return (first, FALLBACK_DTYPE)
    return (first,)


def probe_prompts(model: str) -> tuple[ChatPrompt, ...]:
    """The known-answer prompts of ``model``: its preparation checks when it is one of ours
    (a multilingual model also translates), else the capital of France."""
    source = LLM_SOURCES.get(Path(model.rstrip("/")).name)
    return source.checks if source is not None else (CAPITAL_OF_FRANCE,)


async def run_probe(engine: ProbedEngine, prompts: Sequence[ChatPrompt]) -> tuple[ChatCheck, ...]:
    """Every prompt at once (one batch in the engine), each answer checked for its words."""

    async def one(item: ChatPrompt) -> ChatCheck:
        began = time.perf_counter()
        answer = (await engine.answer(item.prompt, item.max_new_tokens)).strip()
        return judge(item, answer, time.perf_counter() - began)

    return tuple(await asyncio.gather(*(one(p) for p in prompts)))


async def start_probed(
    engine: ProbedEngine,
    *,
    model: str,
    dtypes: Sequence[EngineDtype],
    prompts: Sequence[ChatPrompt],
) -> list[ProbeOutcome]:
    """Start ``engine`` with the first of ``dtypes`` whose probe passes; that engine stays up.

    Returns every outcome in order; the engine runs when the last one passed, and is closed
    when none did.
    """
    outcomes: list[ProbeOutcome] = []
    for dtype in dtypes:
        await engine.start(dtype)
        started = time.perf_counter()
        try:
            checks = await run_probe(engine, prompts)
        except BaseException:
            await engine.close()
            raise
        outcome = ProbeOutcome(
            dtype=dtype,
            checks=checks,
            probe_seconds=round(time.perf_counter() - started, 2),
        )
        outcomes.append(outcome)
        if outcome.passed:
            log.info(
                "engine probe passed",
                model=model,
                dtype=dtype,
                probe_seconds=outcome.probe_seconds,
            )
            if len(outcomes) > 1:
                log.warning(
                    "serving a fallback dtype",
                    model=model,
                    dtype=dtype,
                    refused=[o.dtype for o in outcomes[:-1]],
                    why=f"{outcomes[0].dtype} answered wrongly: {outcomes[0].answers()}",
                    cpu=describe_cpu(),
                )
            return outcomes
        await engine.close()
        log.warning("engine probe failed", model=model, dtype=dtype, answers=outcome.answers())
    return outcomes


def refusal_message(model: str, outcomes: Sequence[ProbeOutcome]) -> str:
    tried = " | ".join(f"{o.dtype}: {o.answers()}" for o in outcomes)
    return (
        f"the engine of {model} answered its known-answer probe wrongly in every dtype tried "
        f"({tried}); CPU {describe_cpu()}; set BABEL_GENERATION_DTYPE to another dtype or "
        "serve another model"
    )


def as_self_check(outcomes: Sequence[ProbeOutcome], requested: str) -> SelfCheck:
    """The heartbeat's summary: the dtype served, what was refused and why."""
    last = outcomes[-1]
    refused = [o.dtype for o in outcomes if not o.passed]
    facts = {
        "dtype": last.dtype if last.passed else "",
        "requested_dtype": requested,
        "fallback": "true" if last.passed and refused else "false",
        "cpu": describe_cpu(),
    }
    if refused:
        facts["refused_dtypes"] = ",".join(refused)
    return SelfCheck(
        name=CHECK_NAME,
        passed=last.passed,
        seconds=round(sum(o.probe_seconds for o in outcomes), 2),
        detail=" | ".join(f"{o.dtype}: {o.answers()}" for o in outcomes),
        facts=facts,
    )


async def start_configured(
    engine: ProbedEngine, settings: GenerationSettings, *, model: str
) -> list[ProbeOutcome]:
    """:func:`start_probed` with the dtypes and prompts ``settings`` and ``model`` give: the
    one decision the worker and ``babelstack models prepare`` share."""
    return await start_probed(
        engine,
        model=model,
        dtypes=dtypes_to_try(settings.dtype, fallback=settings.dtype_fallback),
        prompts=probe_prompts(model),
    )


async def start_checked(
    engine: ProbedEngine, settings: GenerationSettings, *, model: str
) -> SelfCheck | None:
    """Start ``engine`` as ``settings`` say: probed (with fallback) unless the probe is off."""
    if not settings.probe:
        await engine.start(settings.dtype)
        return None
    outcomes = await start_configured(engine, settings, model=model)
    if not outcomes[-1].passed:
        raise BabelError(ErrorCode.UNAVAILABLE, refusal_message(model, outcomes))
    return as_self_check(outcomes, requested=settings.dtype)
