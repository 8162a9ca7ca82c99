"""GGUF tensor names and layouts → Hugging Face ``*ForCausalLM`` ones, for llama and qwen2.

What transformers does when it loads such a GGUF (``load_gguf_checkpoint`` in
``transformers/modeling_gguf_pytorch_utils.py``), written out for the two architectures the
default models use:

- names: ``token_embd`` → ``model.embed_tokens``, ``blk.N.attn_q`` →
  ``model.layers.N.self_attn.q_proj`` and so on (the table below; ``.weight``/``.bias`` kept).
  ``rope_freqs`` has no place in the Hugging Face model and is dropped, as transformers does.
- layout: llama.cpp permutes the rows of llama's q and k projections for its rotary
  embedding; :func:`reverse_permute` undoes it (transformers' ``LlamaTensorProcessor``).
  qwen2 is stored unpermuted.

Pure functions on names and arrays; :mod:`shared.models.gguf_convert` uses them and
``tests/integration/test_gguf_convert.py`` checks the result against transformers' own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.errors import BabelError, ErrorCode

SUPPORTED_ARCHITECTURES = ("llama", "qwen2")
PERMUTED_ARCHITECTURES = frozenset({"llama"})
"""Architectures whose q/k rows llama.cpp permutes on conversion."""

TOP_LEVEL = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
PER_LAYER = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
DROPPED = frozenset({"rope_freqs.weight"})
"""GGUF tensors the Hugging Face model has no parameter for."""

_NAME = re.compile(r"(?:blk\.(?P<layer>\d+)\.)?(?P<leaf>[a-z_]+)\.(?P<suffix>weight|bias)")


@dataclass(frozen=True, slots=True)
class TensorTarget:
    hf_name: str
    permute_heads: int | None
    """Heads to reverse-permute the rows over (q and k of llama), or None."""


def check_architecture(architecture: str) -> None:
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT,
            f"GGUF architecture {architecture!r} is not supported; "
            f"known: {', '.join(SUPPORTED_ARCHITECTURES)}",
        )


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face name of ``gguf_name``; None for a tensor that is dropped."""
    if gguf_name in DROPPED:
        return None
    match = _NAME.fullmatch(gguf_name)
    leaf = match["leaf"] if match else None
    if match is not None and match["layer"] is None and leaf in TOP_LEVEL:
        return f"{TOP_LEVEL[leaf]}.{match['suffix']}"
    if match is not None and match["layer"] is not None and leaf in PER_LAYER:
        return f"model.layers.{int(match['layer'])}.{PER_LAYER[leaf]}.{match['suffix']}"
    raise BabelError(ErrorCode.INVALID_ARGUMENT, f"unknown GGUF tensor {gguf_name!r}")


def permute_heads(
    architecture: str, gguf_name: str, *, num_heads: int, num_kv_heads: int
) -> int | None:
    """Over how many heads ``gguf_name``'s rows are permuted (q: heads, k: kv heads), if at all."""
    if architecture not in PERMUTED_ARCHITECTURES:
        return None
    if ".attn_q." in gguf_name:
        return num_heads
    if ".attn_k." in gguf_name:
        return num_kv_heads
    return None


def target(
    architecture: str, gguf_name: str, *, num_heads: int, num_kv_heads: int
) -> TensorTarget | None:
    """Where ``gguf_name`` goes and how; None for a dropped tensor."""
    check_architecture(architecture)
    name = hf_name(gguf_name)
    if name is None:
        return None
    heads = permute_heads(architecture, gguf_name, num_heads=num_heads, num_kv_heads=num_kv_heads)
    return TensorTarget(hf_name=name, permute_heads=heads)


def reverse_permute(weights: Any, heads: int) -> Any:
    """Undo llama.cpp's rotary permutation of q/k rows (weights ``[rows, …]`` or biases ``[rows]``).

    ``weights`` is a numpy array or a torch tensor (both have ``reshape`` and ``swapaxes``).
    Per head, llama.cpp interleaves the two halves of the head's rows; this puts them back:
    rows ``[h0 r0, h0 r1, …]`` viewed as ``(heads, dim, 2)`` become ``(heads, 2, dim)``.
    """
    rows = weights.shape[0]
    if rows % (2 * heads):
        raise BabelError(
            ErrorCode.INVALID_ARGUMENT, f"{rows} rows do not split into {heads} heads of pairs"
        )
    dim = rows // heads // 2
    return weights.reshape(heads, dim, 2, *weights.shape[1:]).swapaxes(2, 1).reshape(*weights.shape)
