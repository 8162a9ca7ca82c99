"""The CPU features that decide which kernels vLLM's CPU backend and oneDNN take.

vLLM on CPU takes other bfloat16 kernels where the processor has AMX or AVX512-BF16
(see ``docs/vllm-cpu-notes.md``); these flags go into the generation worker's self-check
and into its error when no dtype answers correctly.
"""

from __future__ import annotations

import platform
from pathlib import Path

KERNEL_FLAGS = (
    "amx_bf16",
    "amx_fp16",
    "amx_int8",
    "amx_tile",
    "avx512_bf16",
    "avx512_fp16",
    "avx512_vnni",
    "avx512f",
    "avx2",
)
"""Flags that change the matrix kernels taken, in the order they are reported."""


def kernel_flags(flags: set[str]) -> tuple[str, ...]:
    """The :data:`KERNEL_FLAGS` among ``flags``."""
    return tuple(f for f in KERNEL_FLAGS if f in flags)


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """Every flag of the first processor in ``cpuinfo``; empty where there is none (not Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def describe_cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """E.g. ``x86_64 (amx_bf16 avx512_bf16 avx512f avx2)``: the machine and its kernel flags."""
    flags = kernel_flags(read_cpu_flags(cpuinfo))
    return f"{platform.machine() or 'unknown'} ({' '.join(flags) or 'no listed flags'})"
