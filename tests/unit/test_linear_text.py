"""Text paths stay linear on hostile input (issue 11, class 1).

Each hostile input here took quadratic (or worse) time before: 20 KB of ``**a `` took
7 s in the Markdown patterns, 60 KB of ``<a `` took 48 s in ``html.parser``. The tests
assert on what the code does (what it escapes, how many parts it makes, how many
sentences it sends), and give the hostile inputs a limit that is at least 50 times what
they take now, so a slow shared machine cannot fail them and a quadratic regression can.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from services.retrieval.text.extract import html_to_text, markdown_to_text
from services.tasks.translation.html_nodes import parse_html, safe_comment
from services.tasks.translation.prompt import cut_repeated_tail
from shared.text.markup_guard import guard_markup
from shared.text.sentences import sentence_spans


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """The block finishes within ``seconds`` (hostile inputs took minutes before)."""
    start = time.perf_counter()
    yield
    took = time.perf_counter() - start
    assert took < seconds, f"took {took:.1f} s; linear work takes well under {seconds} s"


HOSTILE_MARKDOWN = {
    "strong": "**a " * 50_000,
    "emphasis": "*a " * 50_000,
    "underscores": "_a " * 50_000,
    "links": "[a" * 50_000,
    "images": "![a](" * 40_000,
    "autolinks": "<http:" * 40_000,
    "blank run": "a" + " " * 200_000 + "b",
    "heading run": "# a" + " " * 200_000 + "b",
    "rule run": "---" + " " * 200_000 + "x",
    "table dashes": "-" * 100_000 + "x",
    "pipe run": "a" + " " * 200_000 + "|b",
    "code ticks": "`a" + "``a" * 50_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_MARKDOWN))
def test_markdown_patterns_are_linear(name: str) -> None:
    with within(10.0):  # ~0.1 s now; "strong" alone would take ~3 min quadratic
        text = markdown_to_text(HOSTILE_MARKDOWN[name])
    assert text  # the text stays (markup it could not pair is kept as text)


def test_markdown_still_strips_its_markup() -> None:
    text = markdown_to_text(
        "## Title ##\n\n**bold** and *it* and snake_case_name and `code` and ``a`b``\n"
        "[link](http://x) ![alt](i.png) <https://a.b>\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert text.splitlines()[0] == "Title"
    assert "bold and it and snake_case_name and code" in text
    assert "link alt https://a.b" in text
    assert "a b" in text
    assert "1 2" in text
    assert "---" not in text


def test_line_breaks_in_long_blank_runs_are_linear() -> None:
    with within(10.0):
        spans = sentence_spans("a" + " " * 500_000 + "b.\nc.", max_chars=1_000)
    assert spans[-1] == (500_004, 500_006)


HOSTILE_HTML = {
    "unended start tags": "<a " * 30_000,
    "unended end tags": "</" * 30_000,
    "unended instructions": "<?" * 30_000,
    "marked sections": "<![" * 30_000,
    "unended comments": "<!--" * 30_000,
    "unclosed quotes": '<a b="x>' * 15_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_HTML))
def test_every_unfinished_construct_becomes_text(name: str) -> None:
    markup = HOSTILE_HTML[name]
    with within(10.0):
        guarded = guard_markup(markup)
    # Each "<" the parser would scan on from is written as text. A tag whose ">" comes
    # before the next "<" is kept: the parser finishes it (a quote runs to the next one).
    if name == "unclosed quotes":
        assert guarded == markup
    else:
        assert "<" not in guarded
        assert guarded.count("&lt;") == markup.count("<")


@pytest.mark.parametrize("name", sorted(HOSTILE_HTML))
@pytest.mark.parametrize("read", [html_to_text, lambda m: parse_html(m).render({})])
def test_html_readers_are_linear(name: str, read: Callable[[str], str]) -> None:
    with within(20.0):  # 60 KB of "<a " took 48 s before, 90 KB takes ~0.1 s now
        read(HOSTILE_HTML[name])


def test_the_guard_keeps_well_formed_markup_as_it_is() -> None:
    markup = (
        '<!doctype html><p class="x">a &lt; b <b>c</b></p><!-- a < b --><?pi x?>'
        "<script>if (a < b && c > d) {}</script><style>p < b {}</style><br/>"
    )
    assert guard_markup(markup) == markup
    assert guard_markup("a < b <p>c</p>") == "a &lt; b <p>c</p>"
    assert guard_markup("<![CDATA[x]]>") == "&lt;![CDATA[x]]>"


def test_deep_unbalanced_markup_costs_one_step_per_tag() -> None:
    depth = 30_000
    markup = '<span translate="no">x' + "<b>x" * depth + "</i>" * depth + "</span>y"
    with within(20.0):  # each end tag scanned the whole open stack before
        document = parse_html(markup)
    texts = [p for p in document.parts if p.kind == "text"]
    assert len(document.parts) == 2 * depth + 2 + len(texts)
    assert all(p.keep for p in texts[:-1]), "text inside translate=no stays kept"
    assert not texts[-1].keep
    assert texts[-1].value == "y"


def test_adjacent_text_pieces_are_joined_once() -> None:
    document = parse_html("a" + "<" * 200_000 + "b")  # the parser yields each "<" apart
    (part,) = document.parts
    assert part.value == "a" + "<" * 200_000 + "b"
    assert document.render({}) == "a" + "&lt;" * 200_000 + "b"


@pytest.mark.parametrize(
    "comment",
    [
        "<!-- a --!><img src=x onerror=alert(1)> -->",
        "<!--><img src=x onerror=alert(1)>-->",
        "<!---><img src=x onerror=alert(1)>-->",
        "<!-- a <!-- b --->",
    ],
)
def test_comments_cannot_end_early_in_a_browser(comment: str) -> None:
    rendered = parse_html(f"<p>Hi</p>{comment}<p>there</p>").render({})
    start = rendered.index("<!--") + 4
    end = rendered.index("-->", start)
    body = rendered[start:end]
    assert "--" not in body
    assert not body.startswith((">", "->"))
    assert not body.endswith("-")
    assert rendered[end:] == "--><p>there</p>"
    assert safe_comment("a--b") == "a- - b"


def test_cdata_is_text_not_a_section() -> None:
    rendered = parse_html("<p><![CDATA[ x > <img src=x onerror=alert(1)> ]]></p>").render({})
    assert "<![CDATA[" not in rendered
    assert "&lt;![CDATA[" in rendered


_OLD_REPEAT = re.compile(r"(.{3,}?)(?:\s*\1){2,}\s*$", re.DOTALL)  # the cubic original


@pytest.mark.parametrize(
    "text",
    [
        "Hallo. Hallo. Hallo.",
        "Der Hund bellt. Der Hund bellt. Der Hund bellt. Der Hund",
        "abcabcabc",
        "Ich bin ich bin ich bin",
        "x y z x y z x y z",
        "Es ist so so so so so",
        "Nothing repeats here.",
        "Ich bin bin bin bin bin bin",
    ],
)
def test_repeated_tails_are_cut_as_before(text: str) -> None:
    assert cut_repeated_tail(text) == _OLD_REPEAT.sub(r"\1", text).strip()


def test_repeated_tail_cutting_is_linear() -> None:
    with within(10.0):  # the pattern was cubic: 4,000 characters took hours
        assert cut_repeated_tail("a" * 200_000 + "b") == "a" * 200_000 + "b"
        assert cut_repeated_tail("word " * 40_000) == "word"
