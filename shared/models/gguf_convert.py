"""Dequantize a GGUF into a Hugging Face causal-LM folder, one tensor at a time.

``transformers``' ``from_pretrained(gguf_file=...)`` holds every tensor dequantized in float32,
then the bfloat16 model, then the saved copy: about 8× the parameter count in bytes (12 GB
for Qwen2.5-Coder-1.5B). Here the GGUF is memory-mapped (``gguf.GGUFReader``), each tensor is
dequantized a few rows at a time (``gguf.quants.dequantize``; quantization blocks never span
rows) straight into a bfloat16 tensor, renamed and un-permuted as transformers does it
(:mod:`shared.models.gguf_names`), and written into safetensors shards of at most
:data:`MAX_SHARD_BYTES` (``model.safetensors``, or ``model-0000i-of-0000n.safetensors`` with
``model.safetensors.index.json``). Only one shard is held at a time.

The config and tokenizer still come from transformers' GGUF readers (metadata only), and the
planned names and shapes are checked against the Hugging Face model's own parameters, built on
the ``meta`` device (no memory), before anything is written. torch, gguf, safetensors and
transformers are imported inside the functions.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from shared.errors import BabelError, ErrorCode
from shared.models.gguf_names import check_architecture, target
from shared.progress import SILENT, Progress

MAX_SHARD_BYTES = 1 << 30
ROW_CHUNK_VALUES = 1 << 24
"""Float32 values dequantized at once (64 MiB), whatever the tensor's size."""
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
SAFETENSORS_METADATA = {"format": "pt"}
"""What transformers writes into each shard's header (and checks when it loads one)."""


@dataclass(frozen=True, slots=True)
class PlannedTensor:
    index: int
    """Position in the GGUF's tensor list."""
    gguf_name: str
    hf_name: str
    shape: tuple[int, ...]
    """Hugging Face (row-major) order: the GGUF's dimensions reversed."""
    permute_heads: int | None


def numel(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def plan_shards(sizes: Sequence[int], max_bytes: int) -> list[range]:
    """Consecutive groups of tensor positions, each at most ``max_bytes`` unless one tensor is."""
    shards: list[range] = []
    start, held = 0, 0
    for position, size in enumerate(sizes):
        if position > start and held + size > max_bytes:
            shards.append(range(start, position))
            start, held = position, 0
        held += size
    if start < len(sizes):
        shards.append(range(start, len(sizes)))
    return shards


def shard_file_names(count: int) -> list[str]:
    if count == 1:
        return [SINGLE_FILE]
    return [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]


def index_document(weight_map: dict[str, str], total_size: int, total_parameters: int) -> bytes:
    """``model.safetensors.index.json`` as transformers writes it."""
    document = {
        "metadata": {"total_parameters": total_parameters, "total_size": total_size},
        "weight_map": dict(sorted(weight_map.items())),
    }
    return msgspec.json.format(msgspec.json.encode(document)) + b"\n"


def check_plan(plan: Sequence[PlannedTensor], expected: dict[str, tuple[int, ...]]) -> None:
    """Raise unless ``plan`` fills exactly the ``expected`` parameters with the right shapes."""
    planned = {item.hf_name: item.shape for item in plan}
    missing = sorted(set(expected) - set(planned))
    unexpected = sorted(set(planned) - set(expected))
    wrong = sorted(
        f"{name} {planned[name]} (model {expected[name]})"
        for name in set(planned) & set(expected)
        if planned[name] != expected[name]
    )
    if missing or unexpected or wrong:
        parts = [
            f"{label}: {', '.join(names[:5])}{' …' if len(names) > 5 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if names
        ]
        raise BabelError(ErrorCode.INTERNAL, f"the GGUF does not fit the model: {'; '.join(parts)}")


def plan_tensors(reader: Any, architecture: str, config: Any) -> list[PlannedTensor]:
    plan = []
    for index, tensor in enumerate(reader.tensors):
        goes = target(
            architecture,
            tensor.name,
            num_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
        )
        if goes is not None:
            shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
            plan.append(PlannedTensor(index, tensor.name, goes.hf_name, shape, goes.permute_heads))
    return plan


def meta_model(config: Any) -> Any:
    """The Hugging Face model of ``config`` on the ``meta`` device: names and shapes, no data."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def expected_parameters(model: Any) -> dict[str, tuple[int, ...]]:
    """What a saved folder holds: the state dict without tied copies (``lm_head`` when tied)."""
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    return {
        name: tuple(value.shape) for name, value in model.state_dict().items() if name not in tied
    }


def dequantize_tensor(tensor: Any, item: PlannedTensor, dtype: Any) -> Any:
    """``tensor`` (a GGUF reader tensor) as a ``dtype`` torch tensor, a few rows at a time."""
    import numpy as np
    import torch
    from gguf.quants import dequantize

    from shared.models.gguf_names import reverse_permute

    data = tensor.data.reshape(-1, tensor.data.shape[-1])
    columns = item.shape[-1]
    out = torch.empty((data.shape[0], columns), dtype=dtype)
    step = max(1, ROW_CHUNK_VALUES // columns)
    for start in range(0, data.shape[0], step):
        rows = np.array(dequantize(data[start : start + step], tensor.tensor_type), np.float32)
        out[start : start + step] = torch.from_numpy(rows.reshape(-1, columns)).to(dtype)
    out = out.reshape(item.shape)
    if item.permute_heads is not None:
        out = reverse_permute(out, item.permute_heads).contiguous()
    return out


def write_weights(
    reader: Any,
    plan: Sequence[PlannedTensor],
    out: Path,
    *,
    dtype: Any,
    max_shard_bytes: int,
    progress: Progress,
) -> None:
    """Dequantize every planned tensor into shards in ``out``, one shard in memory at a time."""
    from safetensors.torch import save_file

    itemsize = dtype.itemsize
    shards = plan_shards([numel(p.shape) * itemsize for p in plan], max_shard_bytes)
    names = shard_file_names(len(shards))
    weight_map: dict[str, str] = {}
    with progress.task("converting tensors", total=len(plan), unit="tensors") as advance:
        for positions, file_name in zip(shards, names, strict=True):
            tensors = {}
            for position in positions:
                item = plan[position]
                tensor = reader.tensors[item.index]
                tensors[item.hf_name] = dequantize_tensor(tensor, item, dtype)
                weight_map[item.hf_name] = file_name
                advance(1)
            save_file(tensors, str(out / file_name), metadata=SAFETENSORS_METADATA)
            del tensors
            gc.collect()
    if len(names) > 1:
        parameters = sum(numel(p.shape) for p in plan)
        (out / INDEX_FILE).write_bytes(
            index_document(weight_map, parameters * itemsize, parameters)
        )


def gguf_architecture(reader: Any) -> str:
    field = reader.fields.get("general.architecture")
    if field is None:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "the GGUF names no general.architecture")
    return str(field.contents())


def convert_gguf_file(
    gguf: Path,
    out: Path,
    *,
    dtype_name: str = "bfloat16",
    max_shard_bytes: int = MAX_SHARD_BYTES,
    progress: Progress = SILENT,
) -> None:
    """Write ``gguf`` as a Hugging Face folder ``out``: safetensors, config, tokenizer."""
    import torch
    from gguf import GGUFReader
    from transformers import AutoConfig, AutoTokenizer

    dtype = getattr(torch, dtype_name)
    reader = GGUFReader(str(gguf))
    architecture = gguf_architecture(reader)
    check_architecture(architecture)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = meta_model(config)
    plan = plan_tensors(reader, architecture, config)
    check_plan(plan, expected_parameters(model))
    out.mkdir(parents=True, exist_ok=True)
    write_weights(
        reader, plan, out, dtype=dtype, max_shard_bytes=max_shard_bytes, progress=progress
    )
    # As save_pretrained writes them: the dtype by name, the class, the generation defaults.
    config.dtype = dtype_name
    config.architectures = [type(model).__name__]
    config.save_pretrained(str(out))
    model.generation_config.save_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(out))
    del reader, model, tokenizer
    gc.collect()
