"""A small trainable classifier head on frozen sentence embeddings (transfer learning).

Training uses torch (deterministic: seeded, fixed batch order); prediction is numpy only.
A head is an ensemble of one or more members, each softmax regression (``hidden=0``) or a
two-layer MLP (GELU); inputs are centred and scaled with statistics of the training data.
Weights travel as float32 bytes in a msgspec struct, so a head is one msgpack file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from shared.errors import BabelError, ErrorCode
from shared.progress import SILENT, Advance, Progress

if TYPE_CHECKING:
    import torch


class HeadConfig(msgspec.Struct, frozen=True, kw_only=True):
    hidden: int = 0
    """0: softmax regression; else the width of the MLP's hidden layer."""
    dropout: float = 0.0
    epochs: int = 200
    batch_size: int = 0
    """0: full batch."""
    lr: float = 0.01
    weight_decay: float = 1e-3
    label_smoothing: float = 0.0
    balanced: bool = True
    """Weight each class by the inverse of its frequency."""
    seeds: tuple[int, ...] = (0,)
    """One member per seed; their probabilities are averaged."""


class Layer(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    cols: int
    weight: bytes
    """float32, ``rows × cols`` (inputs × outputs), little-endian."""
    bias: bytes

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        weight = np.frombuffer(self.weight, dtype="<f4").reshape(self.rows, self.cols)
        return weight, np.frombuffer(self.bias, dtype="<f4")


class HeadWeights(msgspec.Struct, frozen=True, kw_only=True):
    labels: tuple[str, ...]
    dim: int
    mean: bytes
    scale: float
    members: tuple[tuple[Layer, ...], ...]
    config: HeadConfig


def _layer(weight: np.ndarray, bias: np.ndarray) -> Layer:
    return Layer(
        rows=int(weight.shape[0]),
        cols=int(weight.shape[1]),
        weight=np.ascontiguousarray(weight, dtype="<f4").tobytes(),
        bias=np.ascontiguousarray(bias, dtype="<f4").tobytes(),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (as ``torch.nn.GELU(approximate="tanh")`` in training)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Head:
    """A trained head: ``predict_proba(vectors)`` → one probability row per vector."""

    def __init__(self, weights: HeadWeights) -> None:
        self.weights = weights
        self.labels = weights.labels
        self._mean = np.frombuffer(weights.mean, dtype="<f4")
        self._members = [[layer.arrays() for layer in member] for member in weights.members]

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        if vectors.ndim != 2 or vectors.shape[1] != self.weights.dim:
            raise BabelError(
                ErrorCode.INTERNAL,
                f"head expects {self.weights.dim}-dim vectors, got shape {vectors.shape}",
            )
        x = (vectors.astype(np.float32) - self._mean) * self.weights.scale
        total = np.zeros((len(x), len(self.labels)), dtype=np.float64)
        for member in self._members:
            hidden = x
            for i, (weight, bias) in enumerate(member):
                hidden = hidden @ weight + bias
                if i < len(member) - 1:
                    hidden = _gelu(hidden)
            total += _softmax(hidden.astype(np.float64))
        return total / len(self._members)

    def encode(self) -> bytes:
        return msgspec.msgpack.encode(self.weights)

    @classmethod
    def decode(cls, raw: bytes) -> Head:
        return cls(msgspec.msgpack.decode(raw, type=HeadWeights))


def train_head(
    vectors: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    labels: Sequence[str],
    config: HeadConfig,
    progress: Progress = SILENT,
) -> Head:
    """Train on ``vectors`` (n × dim) with class indices ``targets`` into ``labels``.

    ``progress`` counts epochs over all members.
    """
    import torch

    y_np = np.asarray(targets, dtype=np.int64)
    if len(vectors) != len(y_np) or len(y_np) == 0:
        raise BabelError(ErrorCode.INVALID_ARGUMENT, "no training examples, or a count mismatch")
    mean = vectors.mean(axis=0).astype(np.float32)
    centred = vectors.astype(np.float32) - mean
    scale = float(1.0 / max(float(np.sqrt((centred**2).mean())), 1e-6))
    x = torch.from_numpy(np.ascontiguousarray(centred * scale))
    y = torch.from_numpy(y_np)
    counts = np.bincount(y_np, minlength=len(labels)).astype(np.float64)
    if config.balanced:
        class_weights = len(y_np) / (len(labels) * np.maximum(counts, 1.0))
    else:
        class_weights = np.ones(len(labels))
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(class_weights, dtype=torch.float32),
        label_smoothing=config.label_smoothing,
    )
    epochs = config.epochs * len(config.seeds)
    with progress.task("fitting the head", total=epochs, unit="epochs") as advance:
        members = tuple(
            _train_member(x, y, len(labels), config, seed, loss_fn, advance)
            for seed in config.seeds
        )
    weights = HeadWeights(
        labels=tuple(labels),
        dim=int(vectors.shape[1]),
        mean=mean.astype("<f4").tobytes(),
        scale=scale,
        members=members,
        config=config,
    )
    return Head(weights)


def _train_member(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    config: HeadConfig,
    seed: int,
    loss_fn: torch.nn.Module,
    advance: Advance,
) -> tuple[Layer, ...]:
    import torch

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dim = x.shape[1]
    model: torch.nn.Module
    if config.hidden:
        model = torch.nn.Sequential(
            torch.nn.Dropout(config.dropout),
            torch.nn.Linear(dim, config.hidden),
            torch.nn.GELU(approximate="tanh"),
            torch.nn.Dropout(config.dropout),
            torch.nn.Linear(config.hidden, classes),
        )
    else:
        model = torch.nn.Sequential(torch.nn.Dropout(config.dropout), torch.nn.Linear(dim, classes))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    batch = config.batch_size or len(x)
    steps_per_epoch = math.ceil(len(x) / batch)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch
    )
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            optimizer.step()
            scheduler.step()
        advance(1)
    linears = [module for module in model if isinstance(module, torch.nn.Linear)]
    return tuple(
        _layer(linear.weight.detach().numpy().T, linear.bias.detach().numpy()) for linear in linears
    )
