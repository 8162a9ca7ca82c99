"""Check a prepared causal-LM folder: load it offline with transformers and chat greedily.

Each :class:`ChatPrompt` is sent as one user message through the folder's own chat
template; the answer passes when it contains every expected word (case-insensitive).
The model is loaded in bfloat16 first (the folder's own dtype: a 1.5B model needs
3.6 GiB, against 10.6 GiB in float32) and only when an answer is wrong again in float32,
since bfloat16 kernels answer nonsense for some models on some CPUs
(``docs/vllm-cpu-notes.md``). torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.models.cache import ChatCheck, ChatVerification


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    prompt: str
    expected: tuple[str, ...]
    max_new_tokens: int = 24


CAPITAL_OF_FRANCE = ChatPrompt(
    "What is the capital of France? Answer in one word.", expected=("paris",)
)
GERMAN_TO_ENGLISH = ChatPrompt(
    "Translate this German sentence into English: Der Hund schläft im Garten.",
    expected=("dog", "garden"),
    max_new_tokens=32,
)


def answer_has(answer: str, expected: tuple[str, ...]) -> bool:
    lowered = answer.lower()
    return all(word.lower() in lowered for word in expected)


CHECK_DTYPES = ("bfloat16", "float32")
"""Tried in this order; the first whose answers are all right is kept."""


def load_causal_lm(folder: Path, dtype: str = "float32") -> tuple[Any, Any]:
    """The folder's tokenizer and model (``dtype``, eval), from local files only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=getattr(torch, dtype), local_files_only=True
    )
    return tokenizer, model.eval()


def judge(item: ChatPrompt, answer: str, seconds: float) -> ChatCheck:
    """``answer`` to ``item`` as a check: passed when it has every expected word."""
    return ChatCheck(
        prompt=item.prompt,
        expected=item.expected,
        answer=answer,
        seconds=round(seconds, 2),
        passed=answer_has(answer, item.expected),
    )


def all_passed(checks: tuple[ChatCheck, ...]) -> bool:
    return bool(checks) and all(c.passed for c in checks)


def chat_greedy(tokenizer: Any, model: Any, prompt: str, max_new_tokens: int) -> str:
    """The model's greedy answer to one user message, special tokens removed."""
    import torch

    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        output = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad
        )
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


def verify_chat(
    folder: Path, prompts: tuple[ChatPrompt, ...], dtypes: tuple[str, ...] = CHECK_DTYPES
) -> ChatVerification:
    """Load ``folder`` offline and answer each prompt greedily, in the first of ``dtypes``
    that answers all of them right (the last one tried is reported when none does)."""
    import transformers

    verification: ChatVerification | None = None
    for dtype in dtypes:
        checks = _answer_all(folder, prompts, dtype)
        verification = ChatVerification(
            reference=f"transformers {transformers.__version__} generate (greedy, {dtype})",
            checks=checks,
            passed=all_passed(checks),
        )
        if verification.passed:
            break
    if verification is None:
        raise ValueError("no dtype to check with")
    return verification


def _answer_all(folder: Path, prompts: tuple[ChatPrompt, ...], dtype: str) -> tuple[ChatCheck, ...]:
    tokenizer, model = load_causal_lm(folder, dtype)
    checks = []
    try:
        for item in prompts:
            started = time.perf_counter()
            answer = chat_greedy(tokenizer, model, item.prompt, item.max_new_tokens)
            checks.append(judge(item, answer, time.perf_counter() - started))
    finally:
        del model, tokenizer
        gc.collect()
    return tuple(checks)


def failure_message(name: str, verification: ChatVerification) -> str:
    failed = [c for c in verification.checks if not c.passed]
    detail = "; ".join(f"{c.prompt!r} -> {c.answer!r} (expected {c.expected})" for c in failed)
    return f"prepared {name} failed its chat check: {detail or 'no checks ran'}"
