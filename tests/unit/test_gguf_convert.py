"""Tensor-by-tensor GGUF conversion on a small fake GGUF, against transformers' per-tensor steps.

The fake GGUF is written here with ``gguf.GGUFWriter`` (a few Q8_0, F16 and F32 tensors of a
two-head llama block); the real models are converted in ``tests/integration``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter
from gguf.quants import dequantize, quantize
from safetensors import safe_open

from shared.errors import BabelError
from shared.models import gguf_convert
from shared.models.gguf_convert import (
    INDEX_FILE,
    PlannedTensor,
    check_plan,
    plan_shards,
    plan_tensors,
    shard_file_names,
    write_weights,
)
from shared.progress import Advance, StatusBoard

HEADS, KV_HEADS, HIDDEN = 2, 1, 64


class FakeProgress:
    """Records each task and how far it was advanced."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None, int]] = []

    @contextmanager
    def task(self, description: str, total: int | None = None, unit: str = "") -> Iterator[Advance]:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n

        yield advance
        self.tasks.append((description, total, done[0]))

    @contextmanager
    def board(self, names: Sequence[str]) -> Iterator[StatusBoard]:
        raise AssertionError("no board expected")
        yield


def test_shards_group_consecutive_tensors_up_to_the_limit() -> None:
    assert plan_shards([5, 5, 5], 10) == [range(0, 2), range(2, 3)]
    assert plan_shards([3, 20, 3], 10) == [range(0, 1), range(1, 2), range(2, 3)]
    assert plan_shards([4, 4], 100) == [range(0, 2)]
    assert plan_shards([], 10) == []
    assert shard_file_names(1) == ["model.safetensors"]
    assert shard_file_names(2) == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]


def _planned(name: str, shape: tuple[int, ...]) -> PlannedTensor:
    return PlannedTensor(index=0, gguf_name="x", hf_name=name, shape=shape, permute_heads=None)


def test_a_plan_must_fill_the_model_exactly() -> None:
    expected = {"a.weight": (2, 3), "b.weight": (3,)}
    check_plan([_planned("a.weight", (2, 3)), _planned("b.weight", (3,))], expected)
    with pytest.raises(BabelError, match=r"missing: b\.weight"):
        check_plan([_planned("a.weight", (2, 3))], expected)
    with pytest.raises(BabelError, match=r"unexpected: c\.weight"):
        check_plan(
            [*(_planned(n, s) for n, s in expected.items()), _planned("c.weight", (1,))], expected
        )
    with pytest.raises(BabelError, match=r"shape: a\.weight \(3, 2\)"):
        check_plan([_planned("a.weight", (3, 2)), _planned("b.weight", (3,))], expected)


def _llama_cpp_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` of q/k rows, as its converter writes them."""
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, -1).swapaxes(1, 2).reshape(weights.shape)


def _write_fake_gguf(path: Path) -> dict[str, np.ndarray]:
    """A llama block as llama.cpp writes it (q/k permuted); returns the unpermuted originals."""
    rng = np.random.default_rng(7)
    q8 = GGMLQuantizationType.Q8_0
    head_dim = HIDDEN // HEADS
    quantized = {
        "token_embd.weight": rng.normal(size=(10, HIDDEN)),
        "blk.0.attn_q.weight": rng.normal(size=(HEADS * head_dim, HIDDEN)),
        "blk.0.attn_k.weight": rng.normal(size=(KV_HEADS * head_dim, HIDDEN)),
        "blk.0.attn_v.weight": rng.normal(size=(KV_HEADS * head_dim, HIDDEN)),
    }
    stored = dict(quantized)
    stored["blk.0.attn_q.weight"] = _llama_cpp_permute(quantized["blk.0.attn_q.weight"], HEADS)
    stored["blk.0.attn_k.weight"] = _llama_cpp_permute(quantized["blk.0.attn_k.weight"], KV_HEADS)
    writer = GGUFWriter(str(path), "llama")
    for name, values in stored.items():
        writer.add_tensor(name, quantize(values.astype(np.float32), q8), raw_dtype=q8)
    writer.add_tensor("blk.0.attn_norm.weight", rng.normal(size=HIDDEN).astype(np.float16))
    writer.add_tensor("output_norm.weight", rng.normal(size=HIDDEN).astype(np.float32))
    writer.add_tensor("rope_freqs.weight", np.ones(head_dim // 2, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {name: values.astype(np.float32) for name, values in quantized.items()}


def _transformers_tensor(tensor: object) -> torch.Tensor:
    """What transformers' ``load_gguf_checkpoint`` makes of one tensor (llama, bfloat16)."""
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    processor = LlamaTensorProcessor(
        config={"num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS}
    )
    weights = dequantize(tensor.data, tensor.tensor_type)  # type: ignore[attr-defined]
    result = processor.process(weights=weights, name=tensor.name)  # type: ignore[attr-defined]
    return torch.from_numpy(np.copy(result.weights)).to(torch.bfloat16)


def _read_folder(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as handle:
            assert handle.metadata() == {"format": "pt"}
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                tensors[key] = handle.get_tensor(key)
    return tensors


def test_tensors_are_converted_in_row_chunks_into_shards_as_transformers_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fake.gguf"
    originals = _write_fake_gguf(path)
    reader = GGUFReader(str(path))
    config = SimpleNamespace(num_attention_heads=HEADS, num_key_value_heads=KV_HEADS)
    plan = plan_tensors(reader, "llama", config)
    assert [p.hf_name for p in plan] == [
        "model.embed_tokens.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.norm.weight",
    ]
    assert [p.permute_heads for p in plan] == [None, HEADS, KV_HEADS, None, None, None]

    monkeypatch.setattr(gguf_convert, "ROW_CHUNK_VALUES", 3 * HIDDEN)  # three rows at a time
    progress = FakeProgress()
    out = tmp_path / "out"
    out.mkdir()
    write_weights(
        reader, plan, out, dtype=torch.bfloat16, max_shard_bytes=4 * 1024, progress=progress
    )

    assert progress.tasks == [("converting tensors", len(plan), len(plan))]
    written = _read_folder(out)
    assert set(written) == {p.hf_name for p in plan}
    by_name = {t.name: t for t in reader.tensors}
    for item in plan:
        mine, theirs = written[item.hf_name], _transformers_tensor(by_name[item.gguf_name])
        assert mine.dtype == torch.bfloat16
        assert mine.shape == theirs.shape == item.shape
        assert torch.equal(mine, theirs), item.hf_name
    # Un-permuted q and k are the original matrices again, up to Q8_0 and bfloat16 rounding.
    for gguf_name, name in (("blk.0.attn_q.weight", "q_proj"), ("blk.0.attn_k.weight", "k_proj")):
        converted = written[f"model.layers.0.self_attn.{name}.weight"].float().numpy()
        np.testing.assert_allclose(converted, originals[gguf_name], atol=0.05)

    index = json.loads((out / INDEX_FILE).read_text())
    files = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(files) > 1
    assert sorted(set(index["weight_map"].values())) == files
    assert index["metadata"]["total_size"] == sum(t.numel() * 2 for t in written.values())
    assert index["metadata"]["total_parameters"] == sum(t.numel() for t in written.values())
    for name, file_name in index["weight_map"].items():
        with safe_open(str(out / file_name), "pt") as handle:
            assert name in handle.keys()  # noqa: SIM118
