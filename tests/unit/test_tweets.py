"""Text normalisation shared by sentiment training and prediction."""

from __future__ import annotations

import pytest

from services.tasks.sentiment.tweets import normalize_tweet


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I\\u2019m happy\\u002c really", "I’m happy, really"),
        ("@alice_1 thanks @Bob!", "@user thanks @user!"),
        ("see https://t.co/abc123 and www.example.com/x now", "see http and http now"),
        ("na na @someUSER http/URL", "na na @user http"),
        ("  fish &amp; chips \n\n yes ", "fish & chips yes"),
        ("Schön, dass du da bist", "Schön, dass du da bist"),
    ],
)
def test_normalize_tweet(raw: str, expected: str) -> None:
    assert normalize_tweet(raw) == expected
