"""Text normalisation for social-media text, the same at training and at prediction time.

UMSAB (like XLM-T's training data) replaces user names with ``@user`` and links with
``http``; doing the same to incoming text keeps the head's inputs like its training data.
Some UMSAB files also carry JSON-style escapes (``\\u2019``) instead of the characters.
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
_MENTION = re.compile(r"@\w+")
_URL = re.compile(r"\bhttps?://\S+|\bwww\.\S+|\bhttp/URL\b")
_SPACES = re.compile(r"\s+")


def normalize_tweet(text: str) -> str:
    """Decode ``\\uXXXX`` escapes, ``@name`` → ``@user``, links → ``http``, squeeze spaces."""
    text = _ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = _URL.sub("http", text)
    text = _MENTION.sub("@user", text)
    return _SPACES.sub(" ", text).strip()
