"""HTML prepared for the standard library's ``html.parser``, which is quadratic on
malformed markup: every ``<`` that never completes (``<a <a <a``…, ``</``, ``<!--``
without an end, ``<![``) makes it scan on to the end of the input, and the tolerant
start-tag pattern backtracks on top (60 KB of ``<a `` took 48 s).

``guard_markup`` finds, in one forward pass, each ``<`` that the parser would not
complete and writes it as ``&lt;`` — the text the parser would have made of it anyway —
so the parser only meets constructs it finishes without looking further:

- a tag, end tag, ``<!doctype``/``<!…>`` or ``<?…>`` whose ``>`` comes before the next
  ``<`` (a ``<`` inside a quoted attribute value makes the tag text: rare, and safe);
- a comment ``<!--`` with a ``-->`` after it (its content is left alone);
- never a marked section ``<![`` (``CDATA``: in HTML a browser reads it as a bogus
  comment that ends at the first ``>``, the parser at ``]]>``);
- the content of ``script`` and ``style`` is left alone up to their end tag.

The work is linear in the length of the markup.
"""

from __future__ import annotations

import bisect
import re

_COMMENT_END = re.compile(r"--\s*>")  # html.parser's own comment end
_TAG_NAME = re.compile(r"[a-zA-Z][^\t\n\r\f />\x00]*")
_RAW_ELEMENTS = frozenset({"script", "style"})  # html.parser's CDATA_CONTENT_ELEMENTS
_RAW_END = {name: re.compile(rf"</\s*{name}\s*>", re.IGNORECASE) for name in _RAW_ELEMENTS}


def guard_markup(markup: str) -> str:
    """``markup`` with each ``<`` that would not open a complete construct as ``&lt;``."""
    ends = [(m.start(), m.end()) for m in _COMMENT_END.finditer(markup)]
    n = len(markup)
    out: list[str] = []
    copied = 0  # markup[:copied] is in out
    gt = -1  # the first ">" at or after i (n when there is none)
    i = markup.find("<")
    while i != -1:
        following = markup.find("<", i + 1)
        if gt < i:
            found = markup.find(">", i)
            gt = n if found == -1 else found
        resume = following
        if markup.startswith("<!--", i):
            k = bisect.bisect_left(ends, (i + 4, -1))
            keep = k < len(ends)
            if keep:  # skip the comment's content: "<" in it is the comment's
                resume = markup.find("<", ends[k][1])
        elif markup.startswith("<![", i):
            keep = False
        else:
            keep = gt < n and (following == -1 or gt < following)
            name = _TAG_NAME.match(markup, i + 1)
            raw = name.group().lower() if name else ""
            if keep and raw in _RAW_ELEMENTS and markup[gt - 1] != "/":
                end = _RAW_END[raw].search(markup, gt + 1)
                resume = -1 if end is None else end.start()  # unended: raw to the end
        if not keep:
            out.append(markup[copied:i])
            out.append("&lt;")
            copied = i + 1
        i = resume
    out.append(markup[copied:])
    return "".join(out)
