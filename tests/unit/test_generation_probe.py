"""The engine probe's decision logic, with a fake engine that answers wrongly in some dtypes.

The real probe runs at every generation worker start (tests/integration/test_generation_api.py
reads its result from /v1/services); forcing the real failure needs a CPU with AMX kernels.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from services.generation.probe import (
    CHECK_NAME,
    as_self_check,
    dtypes_to_try,
    probe_prompts,
    start_checked,
    start_probed,
)
from services.generation.settings import EngineDtype, GenerationSettings
from shared.cpu_flags import describe_cpu, kernel_flags, read_cpu_flags
from shared.errors import BabelError, ErrorCode
from shared.messages.system import SelfCheck, WorkerInfo
from shared.models.llm_verify import CAPITAL_OF_FRANCE, GERMAN_TO_ENGLISH

GARBAGE = "L'Étoile, la Marseillaise, la femme, la femme au"
RIGHT = {
    CAPITAL_OF_FRANCE.prompt: "The capital of France is Paris.",
    GERMAN_TO_ENGLISH.prompt: "The dog is sleeping in the garden.",
}


class FakeEngine:
    """A fake engine: answers garbage in the dtypes listed in ``broken``, right otherwise."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.dtype: str | None = None
        self.events: list[str] = []

    async def start(self, dtype: EngineDtype) -> None:
        assert self.dtype is None, "started twice without close"
        self.dtype = dtype
        self.events.append(f"start {dtype}")

    async def answer(self, prompt: str, max_tokens: int) -> str:
        assert self.dtype is not None
        return GARBAGE if self.dtype in self.broken else RIGHT[prompt]

    async def close(self) -> None:
        self.events.append(f"close {self.dtype}")
        self.dtype = None


def _settings(**changes: object) -> GenerationSettings:
    return msgspec.structs.replace(GenerationSettings(), **changes)


def test_by_default_bfloat16_is_served_where_right_and_float32_where_not() -> None:
    assert GenerationSettings().dtype == "bfloat16"
    assert GenerationSettings().dtype_fallback is True
    right, wrong = FakeEngine(broken=set()), FakeEngine(broken={"bfloat16"})
    asyncio.run(start_checked(right, GenerationSettings(), model="SmolLM2-135M-Instruct"))
    asyncio.run(start_checked(wrong, GenerationSettings(), model="SmolLM2-135M-Instruct"))
    assert right.dtype == "bfloat16"
    assert wrong.dtype == "float32"


def test_float32_is_tried_after_another_dtype_only_when_fallback_is_on() -> None:
    assert dtypes_to_try("bfloat16", fallback=True) == ("bfloat16", "float32")
    assert dtypes_to_try("bfloat16", fallback=False) == ("bfloat16",)
    assert dtypes_to_try("float32", fallback=True) == ("float32",)


def test_known_models_are_probed_with_their_preparation_checks() -> None:
    assert probe_prompts("/cache/Qwen2.5-Coder-1.5B-Instruct/") == (
        CAPITAL_OF_FRANCE,
        GERMAN_TO_ENGLISH,
    )
    assert probe_prompts("SmolLM2-135M-Instruct") == (CAPITAL_OF_FRANCE,)
    assert probe_prompts("/models/my-own-llm") == (CAPITAL_OF_FRANCE,)


def test_a_right_engine_is_served_in_the_first_dtype() -> None:
    engine = FakeEngine(broken=set())
    check = asyncio.run(
        start_checked(engine, _settings(dtype="bfloat16"), model="Qwen2.5-Coder-1.5B-Instruct")
    )
    assert engine.events == ["start bfloat16"]
    assert engine.dtype == "bfloat16"
    assert check is not None
    assert check.passed
    assert check.name == CHECK_NAME
    assert check.facts["dtype"] == "bfloat16"
    assert check.facts["fallback"] == "false"
    assert "refused_dtypes" not in check.facts


def test_a_wrong_bfloat16_engine_is_rebuilt_in_float32() -> None:
    engine = FakeEngine(broken={"bfloat16"})
    check = asyncio.run(
        start_checked(engine, _settings(dtype="bfloat16"), model="SmolLM2-135M-Instruct")
    )
    assert engine.events == ["start bfloat16", "close bfloat16", "start float32"]
    assert engine.dtype == "float32"  # left running for users
    assert check is not None
    assert check.passed
    assert check.facts["dtype"] == "float32"
    assert check.facts["requested_dtype"] == "bfloat16"
    assert check.facts["fallback"] == "true"
    assert check.facts["refused_dtypes"] == "bfloat16"
    assert GARBAGE in check.detail
    assert "Paris" in check.detail


def test_without_fallback_a_wrong_engine_refuses_to_become_ready() -> None:
    engine = FakeEngine(broken={"bfloat16"})
    with pytest.raises(BabelError) as caught:
        asyncio.run(
            start_checked(
                engine,
                _settings(dtype="bfloat16", dtype_fallback=False),
                model="SmolLM2-135M-Instruct",
            )
        )
    assert engine.events == ["start bfloat16", "close bfloat16"]
    assert engine.dtype is None
    message = str(caught.value)
    assert caught.value.info.code is ErrorCode.UNAVAILABLE
    assert "SmolLM2-135M-Instruct" in message
    assert "bfloat16" in message
    assert GARBAGE in message
    assert describe_cpu() in message  # the CPU flags


def test_when_every_dtype_is_wrong_the_error_names_each() -> None:
    engine = FakeEngine(broken={"bfloat16", "float32"})
    with pytest.raises(BabelError) as caught:
        asyncio.run(start_checked(engine, _settings(dtype="bfloat16"), model="m"))
    assert engine.events == ["start bfloat16", "close bfloat16", "start float32", "close float32"]
    assert "bfloat16:" in str(caught.value)
    assert "float32:" in str(caught.value)


def test_a_multilingual_model_fails_on_a_wrong_translation_alone() -> None:
    class WrongTranslation(FakeEngine):
        async def answer(self, prompt: str, max_tokens: int) -> str:
            if prompt == GERMAN_TO_ENGLISH.prompt and self.dtype == "bfloat16":
                return "Der Hund"
            return await super().answer(prompt, max_tokens)

    engine = WrongTranslation(broken=set())
    outcomes = asyncio.run(
        start_probed(
            engine,
            model="Qwen2.5-Coder-1.5B-Instruct",
            dtypes=("bfloat16", "float32"),
            prompts=(CAPITAL_OF_FRANCE, GERMAN_TO_ENGLISH),
        )
    )
    assert [(o.dtype, o.passed) for o in outcomes] == [("bfloat16", False), ("float32", True)]
    assert [c.passed for c in outcomes[0].checks] == [True, False]


def test_probe_off_starts_the_configured_dtype_unchecked() -> None:
    engine = FakeEngine(broken={"bfloat16"})
    check = asyncio.run(start_checked(engine, _settings(probe=False), model="m"))
    assert check is None
    assert engine.events == ["start bfloat16"]


def test_the_self_check_travels_in_the_heartbeat() -> None:
    engine = FakeEngine(broken={"bfloat16"})
    outcomes = asyncio.run(
        start_probed(
            engine, model="m", dtypes=("bfloat16", "float32"), prompts=(CAPITAL_OF_FRANCE,)
        )
    )
    check = as_self_check(outcomes, requested="bfloat16")
    info = WorkerInfo(
        service="generation",
        worker="w",
        version="1",
        pid=1,
        host="h",
        started_at=0.0,
        checks=(check,),
    )
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(info), type=WorkerInfo)
    assert decoded.checks == (check,)
    assert isinstance(decoded.checks[0], SelfCheck)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    flags = read_cpu_flags(cpuinfo)
    assert kernel_flags(flags) == (
        "amx_bf16",
        "amx_int8",
        "amx_tile",
        "avx512_bf16",
        "avx512f",
        "avx2",
    )
    assert "amx_bf16 amx_int8" in describe_cpu(cpuinfo)
    assert read_cpu_flags(tmp_path / "missing") == set()
