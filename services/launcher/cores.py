"""How the embedded stack shares the CPU cores between vLLM and the other services.

Left alone, vLLM's CPU backend binds its OpenMP threads to every core but one, and torch in
the tasks and retrieval workers starts one thread per core. Their threads then share cores
with vLLM's, and a torch parallel region waits for its slowest thread: measured on two
cores, a sentiment call of 64 tweets took longer than the gateway's 30 s timeout while one
client was translating through the LLM. The plan gives vLLM the first ``n - k`` cores
(``VLLM_CPU_OMP_THREADS_BIND``), keeps ``k = max(1, n // 4)`` for the others (their torch
thread count), and runs generation one ``nice`` step behind them, so interactive calls of
the other services keep their latency while generation is busy. Settings the operator set
in the environment win over the plan.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GENERATION_NICE = 5
"""Niceness of the generation worker: under contention, the other services' threads win."""

_THREAD_SETTINGS = {
    "tasks": ("BABEL_TASKS_EMBEDDING_THREADS", "OMP_NUM_THREADS"),
    "retrieval": ("BABEL_RETRIEVAL_THREADS", "OMP_NUM_THREADS"),
}


@dataclass(frozen=True)
class CorePlan:
    generation_cores: tuple[int, ...] = ()
    other_threads: int = 0
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    """Environment variables per service name."""

    @property
    def active(self) -> bool:
        return bool(self.generation_cores)

    def describe(self) -> str:
        if not self.active:
            return "cores      shared freely (plan off, generation alone, or one core)"
        cores = ",".join(map(str, self.generation_cores))
        return (
            f"cores      generation on {cores} (nice {GENERATION_NICE}); "
            f"tasks and retrieval use {self.other_threads} torch thread(s) each"
        )


def available_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def plan_cores(
    cores: Sequence[int], services: Sequence[str], environ: Mapping[str, str]
) -> CorePlan:
    """The plan for ``services`` on ``cores``; empty unless generation runs beside tasks or
    retrieval on two cores or more."""
    shared = any(name in services for name in _THREAD_SETTINGS)
    if "generation" not in services or not shared or len(cores) < 2:
        return CorePlan()
    others = max(1, len(cores) // 4)
    generation_cores = tuple(cores[: len(cores) - others])
    env: dict[str, dict[str, str]] = {}
    if "VLLM_CPU_OMP_THREADS_BIND" not in environ:
        env["generation"] = {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, generation_cores))}
    for name, keys in _THREAD_SETTINGS.items():
        if name in services:
            env[name] = {key: str(others) for key in keys if key not in environ}
    return CorePlan(generation_cores=generation_cores, other_threads=others, env=env)


def with_nice(argv: Sequence[str], service: str, plan: CorePlan) -> list[str]:
    """``argv`` run at :data:`GENERATION_NICE` for the generation service under a plan."""
    if service == "generation" and plan.active:
        return ["nice", "-n", str(GENERATION_NICE), *argv]
    return list(argv)
