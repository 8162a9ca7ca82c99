"""The trainable head: learns, is deterministic, round-trips through its bytes."""

from __future__ import annotations

import numpy as np
import pytest

from services.tasks.heads import Head, HeadConfig, train_head
from shared.errors import BabelError


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated clusters on the unit sphere (like normalised embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 32))
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + 0.3 * rng.normal(size=(60, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.mark.parametrize(
    "config",
    [
        HeadConfig(epochs=100),
        HeadConfig(hidden=16, dropout=0.1, epochs=30, batch_size=16, seeds=(0, 1)),
    ],
)
def test_head_learns_and_is_deterministic(config: HeadConfig) -> None:
    x, y = _blobs()
    head = train_head(x, y, ("a", "b", "c"), config)
    probabilities = head.predict_proba(x)
    assert probabilities.shape == (60, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities.argmax(axis=1) == y).mean() == 1.0
    again = train_head(x, y, ("a", "b", "c"), config)
    np.testing.assert_array_equal(again.predict_proba(x), probabilities)


def test_head_round_trips_through_bytes() -> None:
    x, y = _blobs()
    head = train_head(x, y, ("neg", "neu", "pos"), HeadConfig(hidden=8, epochs=5, seeds=(3,)))
    copy = Head.decode(head.encode())
    assert copy.labels == ("neg", "neu", "pos")
    np.testing.assert_array_equal(copy.predict_proba(x), head.predict_proba(x))


def test_head_refuses_vectors_of_another_size() -> None:
    x, y = _blobs()
    head = train_head(x, y, ("a", "b", "c"), HeadConfig(epochs=2))
    with pytest.raises(BabelError, match="32-dim"):
        head.predict_proba(np.zeros((1, 16), dtype=np.float32))
