"""GGUF → Hugging Face names and the q/k un-permutation, on small fake tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.errors import BabelError
from shared.models.gguf_names import hf_name, permute_heads, reverse_permute, target


@pytest.mark.parametrize(
    ("gguf", "hf"),
    [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
        ("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
        ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight"),
        ("blk.3.attn_q.bias", "model.layers.3.self_attn.q_proj.bias"),
        ("blk.12.attn_k.bias", "model.layers.12.self_attn.k_proj.bias"),
        ("blk.12.attn_v.weight", "model.layers.12.self_attn.v_proj.weight"),
        ("blk.27.attn_output.weight", "model.layers.27.self_attn.o_proj.weight"),
        ("blk.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight"),
        ("blk.1.ffn_gate.weight", "model.layers.1.mlp.gate_proj.weight"),
        ("blk.1.ffn_up.weight", "model.layers.1.mlp.up_proj.weight"),
        ("blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"),
    ],
)
def test_names_map_as_transformers_maps_them(gguf: str, hf: str) -> None:
    assert hf_name(gguf) == hf


def test_rope_freqs_is_dropped_and_an_unknown_tensor_refused() -> None:
    assert hf_name("rope_freqs.weight") is None
    for unknown in ("blk.0.ffn_gate_exps.weight", "blk.0.attn_qkv.weight", "token_embd.scale"):
        with pytest.raises(BabelError, match="unknown GGUF tensor"):
            hf_name(unknown)


def test_only_llama_q_and_k_are_permuted() -> None:
    heads = {"num_heads": 9, "num_kv_heads": 3}
    assert permute_heads("llama", "blk.0.attn_q.weight", **heads) == 9
    assert permute_heads("llama", "blk.0.attn_k.weight", **heads) == 3
    assert permute_heads("llama", "blk.0.attn_v.weight", **heads) is None
    assert permute_heads("qwen2", "blk.0.attn_q.weight", **heads) is None
    assert permute_heads("qwen2", "blk.0.attn_k.bias", **heads) is None


def test_an_unsupported_architecture_is_refused() -> None:
    with pytest.raises(BabelError, match="'gemma2' is not supported"):
        target("gemma2", "token_embd.weight", num_heads=1, num_kv_heads=1)
    assert target("qwen2", "rope_freqs.weight", num_heads=1, num_kv_heads=1) is None


def test_reverse_permute_puts_each_heads_halves_back() -> None:
    # One head of four rows a0 a1 b0 b1: llama.cpp stores them interleaved, a0 b0 a1 b1.
    stored = np.array([10.0, 20.0, 11.0, 21.0])
    assert reverse_permute(stored, 1).tolist() == [10.0, 11.0, 20.0, 21.0]


def _llama_cpp_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py), which GGUF files carry."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


@pytest.mark.parametrize(("heads", "rows", "cols"), [(4, 32, 6), (2, 16, 6), (3, 12, 0)])
def test_reverse_permute_undoes_llama_cpp_and_matches_transformers(
    heads: int, rows: int, cols: int
) -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rng = np.random.default_rng(heads)
    original = rng.normal(size=(rows, cols) if cols else (rows,)).astype(np.float32)
    stored = _llama_cpp_permute(original, heads)
    assert not np.array_equal(stored, original)
    undone = reverse_permute(stored, heads)
    np.testing.assert_array_equal(undone, original)
    theirs = LlamaTensorProcessor()._reverse_permute_weights(stored, heads)
    np.testing.assert_array_equal(undone, theirs)
    as_torch = reverse_permute(torch.from_numpy(stored), heads)
    np.testing.assert_array_equal(as_torch.numpy(), original)


def test_rows_that_do_not_split_into_heads_are_refused() -> None:
    with pytest.raises(BabelError, match="do not split"):
        reverse_permute(np.zeros((6, 2)), 2)
