"""A collection's FAISS index: exact inner product while small, IVF past a threshold.

Ids are the chunk ids of the store. Deletes remove vectors for real (``remove_ids``).
Snapshots are written atomically with the store ``generation`` they reflect.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import faiss
import numpy as np


class VectorIndex:
    def __init__(
        self, dim: int, exact_max: int, nprobe_fraction: float, min_scanned: int = 0
    ) -> None:
        self.dim = dim
        self._exact_max = exact_max
        self._nprobe_fraction = nprobe_fraction
        self._min_scanned = min_scanned
        self._index: Any = self._flat()
        self.kind = "flat"
        self.generation = 0

    def _flat(self) -> Any:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def nprobe(self) -> int:
        """Lists probed per query: a share of the lists, and enough lists to scan at least
        ``min_scanned`` vectors (small IVF indexes have short lists and need a larger share;
        measured in bench/retrieval_speed.py)."""
        nlist = int(getattr(self._index, "nlist", 1))
        per_list = max(self.ntotal / nlist, 1.0)
        wanted = max(
            8, math.ceil(nlist * self._nprobe_fraction), math.ceil(self._min_scanned / per_list)
        )
        return min(nlist, wanted)

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray, generation: int) -> None:
        """Build from scratch: exact when small, IVF (trained on these vectors) when large."""
        if len(ids) > self._exact_max:
            nlist = int(min(65_536, max(16, 4 * math.sqrt(len(ids)))))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vectors[rng.permutation(len(vectors))[: max(nlist * 64, 50_000)]]
            index.train(np.ascontiguousarray(sample))
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
            self._quantizer = quantizer  # keep alive with its index
            self._index, self.kind = index, "ivf"
        else:
            self._index, self.kind = self._flat(), "flat"
            if len(ids):
                self._index.add_with_ids(np.ascontiguousarray(vectors), ids)
        self.generation = generation

    def apply(
        self, removed: np.ndarray, added: np.ndarray, vectors: np.ndarray, generation: int
    ) -> bool:
        """Follow one committed store change; True when the index outgrew exact search."""
        if len(removed):
            self._index.remove_ids(faiss.IDSelectorBatch(removed))
        if len(added):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), added)
        self.generation = generation
        return self.kind == "flat" and self.ntotal > self._exact_max

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Best ``k`` (chunk id, inner product) per query, optionally among ``allowed`` ids."""
        if self.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return [[] for _ in range(len(queries))]
        selector = faiss.IDSelectorBatch(allowed) if allowed is not None else None
        if self.kind == "ivf":
            nprobe = self.nprobe
            if allowed is not None:  # a selective filter needs more lists to find k allowed ids
                nlist = int(self._index.nlist)
                nprobe = min(nlist, math.ceil(nprobe * self.ntotal / max(len(allowed), 1)))
            params: Any = faiss.SearchParametersIVF()
            params.nprobe = nprobe
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        k = min(k, self.ntotal)
        scores, ids = self._index.search(
            np.ascontiguousarray(queries, dtype=np.float32), k, params=params
        )
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    # ------------------------------------------------------------------ snapshots
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, path)
        meta = {"generation": self.generation, "kind": self.kind, "ntotal": self.ntotal}
        tmp_meta = path.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, path.with_suffix(".json"))

    def load(self, path: Path) -> bool:
        """Load a snapshot; False when there is none or it is unreadable."""
        meta_path = path.with_suffix(".json")
        if not path.exists() or not meta_path.exists():
            return False
        try:
            meta = json.loads(meta_path.read_text())
            index = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError):
            return False
        if index.d != self.dim:
            return False
        self._index, self.kind = index, str(meta["kind"])
        self.generation = int(meta["generation"])
        return True
