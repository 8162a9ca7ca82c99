"""A tiny NLLB-shaped translation model, built offline for tests: random weights.

The tokenizer is built with the ``tokenizers`` library (a word-level vocabulary with
NLLB's special and language tokens) and the model is an ``M2M100ForConditionalGeneration``
(NLLB-200's architecture) with a few hundred thousand random parameters. Both are saved
with ``save_pretrained`` into a folder that the seq2seq backend loads exactly as it
loads a real NLLB model. It translates nothing meaningfully: it proves the code path.
"""

from __future__ import annotations

from pathlib import Path

LANGUAGE_TOKENS = ("eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn")
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
WORDS = (
    "hello", "world", "the", "cat", "dog", "house", "is", "a", "an", "and", "of", "to", "in",
    "it", "good", "morning", "day", "night", "hallo", "welt", "die", "katze", "hund", "haus",
    "ist", "ein", "eine", "und", "guten", "tag", "bonjour", "le", "chat", "maison", "hola", "el",
    "gato", "casa", ".", ",", "!", "?",
)  # fmt: skip


def build_tiny_nllb(folder: Path, seed: int = 0) -> Path:
    """Write a tokenizer and a random tiny model to ``folder``; return it."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, PreTrainedTokenizerFast

    vocabulary = {token: i for i, token in enumerate((*SPECIALS, *WORDS, *LANGUAGE_TOKENS))}
    core = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=list(LANGUAGE_TOKENS),
    )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = M2M100Config(
        vocab_size=len(vocabulary),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        pad_token_id=vocabulary["<pad>"],
        bos_token_id=vocabulary["<s>"],
        eos_token_id=vocabulary["</s>"],
        decoder_start_token_id=vocabulary["</s>"],
    )
    M2M100ForConditionalGeneration(config).eval().save_pretrained(folder)
    return folder
