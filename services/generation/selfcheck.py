"""``python -m services.generation.selfcheck FOLDER``: serve a model folder with vLLM and probe it.

``babelstack models prepare`` runs this in a child process after the transformers check,
so a folder is verified by the engine and dtype that will serve it (the generation
settings, ``BABEL_GENERATION_DTYPE``), with the worker's own probe and fallback
(:mod:`services.generation.probe`). The child prints one JSON
:class:`~shared.models.cache.EngineVerification` line last on stdout and exits 0 when it
passed. vLLM spawns processes that re-import this module: everything runs under the guard.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec

from services.generation.engine import LlmEngine
from services.generation.probe import start_configured
from services.generation.settings import GenerationSettings
from shared.cpu_flags import describe_cpu
from shared.errors import BabelError, ErrorCode
from shared.models.cache import EngineAttempt, EngineVerification
from shared.settings import load_settings

RESULT_PREFIX = '{"reference"'
"""How the result line starts (the first field of the JSON object), among vLLM's logs."""


async def verify_engine(folder: Path, environ: Mapping[str, str]) -> EngineVerification:
    """Start the engine on ``folder`` as the worker would, probe it, stop it."""
    import vllm

    settings = load_settings(GenerationSettings, environ)
    engine = LlmEngine(settings, str(folder), folder.name)
    on_cpu = engine.on_cpu()
    outcomes = await start_configured(engine, settings, model=folder.name)
    await engine.close()
    last = outcomes[-1]
    return EngineVerification(
        reference=f"vllm {vllm.__version__} AsyncLLM (greedy), {'cpu' if on_cpu else 'gpu'}",
        dtype_setting=settings.dtype,
        dtype=last.dtype if last.passed else "",
        cpu=describe_cpu(),
        attempts=tuple(
            EngineAttempt(dtype=o.dtype, checks=o.checks, passed=o.passed) for o in outcomes
        ),
        passed=last.passed,
    )


def run_engine_check(folder: Path, environ: Mapping[str, str]) -> EngineVerification:
    """:func:`verify_engine` in a child process (vLLM's processes and memory go with it)."""
    done = subprocess.run(
        [sys.executable, "-m", "services.generation.selfcheck", str(folder)],
        env=dict(environ),
        capture_output=True,
        text=True,
        check=False,
    )
    found = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    try:
        return msgspec.json.decode(found[-1], type=EngineVerification)
    except (IndexError, msgspec.ValidationError, msgspec.DecodeError):
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise BabelError(
            ErrorCode.INTERNAL,
            f"the vLLM engine check of {folder.name} crashed (exit {done.returncode}):\n{tail}",
        ) from None


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m services.generation.selfcheck MODEL_FOLDER")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    verification = asyncio.run(verify_engine(Path(sys.argv[1]), os.environ))
    sys.stdout.write(msgspec.json.encode(verification).decode() + "\n")
    sys.exit(0 if verification.passed else 1)


if __name__ == "__main__":
    main()
