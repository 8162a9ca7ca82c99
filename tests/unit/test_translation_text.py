"""Sentence segmentation/reassembly, HTML text nodes and the LLM answer cleaning."""

from __future__ import annotations

import pytest

from services.tasks.translation.html_nodes import parse_html
from services.tasks.translation.prompt import build_messages, clean_translation, max_tokens_for
from services.tasks.translation.segments import reassemble, segment
from services.tasks.translation.seq2seq import LanguageTokens
from shared.errors import BabelError
from shared.languages import normalize


def _upper(text: str, target: str = "de") -> str:
    pieces = segment(text, max_chars=400)
    return reassemble(pieces, [s.upper() for s in pieces.sentences], target)


def test_sentences_and_line_breaks_survive() -> None:
    text = "  First one. Second one!\nA new line.\n\nA paragraph?\r\n\r\nLast.  \n"
    pieces = segment(text, max_chars=400)
    assert pieces.sentences == (
        "First one.",
        "Second one!",
        "A new line.",
        "A paragraph?",
        "Last.",
    )
    assert _upper(text) == text.upper()


def test_gaps_follow_the_target_script() -> None:
    assert _upper("こんにちは。元気ですか？", "en") == "こんにちは。 元気ですか？"
    assert _upper("Hello. How are you?", "ja") == "HELLO.HOW ARE YOU?"
    assert _upper("Hello.\nHow are you?", "ja") == "HELLO.\nHOW ARE YOU?"


def test_long_sentences_are_cut() -> None:
    pieces = segment("word " * 200, max_chars=50)
    assert all(len(s) <= 50 for s in pieces.sentences)
    assert len(pieces.sentences) >= 20


def test_reassemble_needs_one_translation_per_sentence() -> None:
    with pytest.raises(ValueError, match="one translation per sentence"):
        reassemble(segment("One. Two.", 400), ["Eins."], "de")


def _translate_html(markup: str) -> str:
    document = parse_html(markup)
    return document.render({i: f"[{t}]" for i, t in document.translatable().items()})


def test_html_keeps_tags_attributes_scripts_and_styles() -> None:
    markup = (
        '<!DOCTYPE html><p class="x" title="Hello">Hello <b>world</b>!</p>'
        "<script>var s = '<b>Hello</b>';</script><style>p { color: red }</style>"
        '<!-- note --><img src="a.png" alt="A cat"/><code>x = 1</code>'
        '<span translate="no">BabelStack</span><p class="notranslate">Keep</p>'
    )
    assert _translate_html(markup) == (
        '<!DOCTYPE html><p class="x" title="Hello">[Hello ]<b>[world]</b>[!]</p>'
        "<script>var s = '<b>Hello</b>';</script><style>p { color: red }</style>"
        '<!-- note --><img src="a.png" alt="A cat"/><code>x = 1</code>'
        '<span translate="no">BabelStack</span><p class="notranslate">Keep</p>'
    )


def test_html_output_is_escaped_and_never_injects_markup() -> None:
    document = parse_html("<p>a &lt;b&gt; &amp; c</p>")
    (index, text), *_ = document.translatable().items()
    assert text == "a <b> & c"
    rendered = document.render({index: "<script>alert(1)</script> & more"})
    assert rendered == "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; more</p>"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("<p>Hello <b>world</p> <i", "<p>[Hello ]<b>[world]</p>[ &lt;i]"),
        ("x < y & z > w", "[x &lt; y &amp; z &gt; w]"),
        ("</div></div>text", "</div></div>[text]"),
        ('<a href="', '[&lt;a href="]'),
        ("<!-- unclosed", "[&lt;!-- unclosed]"),
        ("<script>alert(1)", "<script>alert(1)"),
        ("<<b>>", "[&lt;]<b>[&gt;]"),
    ],
)
def test_malformed_html_is_read_as_text(markup: str, expected: str) -> None:
    assert _translate_html(markup) == expected


def test_clean_translation_removes_what_small_models_add() -> None:
    assert clean_translation("Hallo Welt.", "Hello world.") == "Hallo Welt."
    assert clean_translation("Translation: Hallo Welt.", "x") == "Hallo Welt."
    assert clean_translation("German translation: Hallo", "x") == "Hallo"
    assert clean_translation('The English translation is: "Hi, Tom."', "x") == "Hi, Tom."
    assert clean_translation("Here is the translation:\n\nHallo.", "x") == "Hallo."
    assert clean_translation("German: Hallo", "x") == "Hallo"
    assert clean_translation('"Hallo."', "Hello.") == "Hallo."
    assert clean_translation('"Hallo," sagte er.', '"Hello," he said.') == '"Hallo," sagte er.'
    assert clean_translation("「こんにちは」", "Hello") == "こんにちは"
    assert clean_translation("Hallo.\nNote: informal.", "x") == "Hallo."
    assert clean_translation("Paris: die Stadt", "x") == "Paris: die Stadt"
    assert clean_translation("ja ja ja ja", "x") == "ja ja ja ja"
    assert clean_translation("Ich bin bin bin bin bin bin", "x", truncated=True) == "Ich bin"
    assert clean_translation("  \n ", "x") == ""


def test_prompt_names_the_languages_and_caps_the_length() -> None:
    (message,) = build_messages("Guten Morgen.", "de", "en")
    assert message.role == "user"
    assert message.content.startswith("Translate the following German text to English.")
    assert message.content.endswith("\n\nGuten Morgen.")
    assert max_tokens_for("Guten Morgen.") == 16 + 13
    assert max_tokens_for("x" * 10_000) == 1_024


def test_language_codes_fold_libretranslate_aliases() -> None:
    assert normalize("DE") == "de"
    assert normalize("zt") == "zh-Hant"
    assert normalize("zh-Hans") == "zh"
    assert normalize("pt-BR") == "pt"
    assert normalize("xx") == "xx"


def test_seq2seq_language_tokens_tell_the_model_family() -> None:
    nllb = LanguageTokens.of({"eng_Latn": 5, "deu_Latn": 6, "hello": 7}, pair="")
    assert (nllb.family, dict(nllb.tokens)) == ("nllb", {"de": "deu_Latn", "en": "eng_Latn"})
    assert nllb.pairs == {"de": ("en",), "en": ("de",)}
    m2m = LanguageTokens.of({"__en__": 1, "__fr__": 2, "__ja__": 3}, pair="")
    assert m2m.family == "m2m100"
    assert m2m.pairs["ja"] == ("en", "fr")
    marian = LanguageTokens.of({"hello": 1}, pair="de-en")
    assert (marian.family, marian.pairs) == ("marian", {"de": ("en",)})
    with pytest.raises(BabelError, match="BABEL_TRANSLATION_PAIR"):
        LanguageTokens.of({"hello": 1}, pair="")
