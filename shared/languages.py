"""Language codes: ISO 639-1, English names, NLLB codes, LibreTranslate's aliases."""

from __future__ import annotations

# ISO 639-1 (or BCP 47 for Chinese scripts) -> (English name, FLORES-200/NLLB code).
LANGUAGES: dict[str, tuple[str, str]] = {
    "ar": ("Arabic", "arb_Arab"),
    "bg": ("Bulgarian", "bul_Cyrl"),
    "bn": ("Bengali", "ben_Beng"),
    "ca": ("Catalan", "cat_Latn"),
    "cs": ("Czech", "ces_Latn"),
    "da": ("Danish", "dan_Latn"),
    "de": ("German", "deu_Latn"),
    "el": ("Greek", "ell_Grek"),
    "en": ("English", "eng_Latn"),
    "es": ("Spanish", "spa_Latn"),
    "et": ("Estonian", "est_Latn"),
    "fa": ("Persian", "pes_Arab"),
    "fi": ("Finnish", "fin_Latn"),
    "fr": ("French", "fra_Latn"),
    "he": ("Hebrew", "heb_Hebr"),
    "hi": ("Hindi", "hin_Deva"),
    "hu": ("Hungarian", "hun_Latn"),
    "id": ("Indonesian", "ind_Latn"),
    "it": ("Italian", "ita_Latn"),
    "ja": ("Japanese", "jpn_Jpan"),
    "ko": ("Korean", "kor_Hang"),
    "lt": ("Lithuanian", "lit_Latn"),
    "lv": ("Latvian", "lvs_Latn"),
    "nl": ("Dutch", "nld_Latn"),
    "no": ("Norwegian", "nob_Latn"),
    "pl": ("Polish", "pol_Latn"),
    "pt": ("Portuguese", "por_Latn"),
    "ro": ("Romanian", "ron_Latn"),
    "ru": ("Russian", "rus_Cyrl"),
    "sk": ("Slovak", "slk_Latn"),
    "sl": ("Slovenian", "slv_Latn"),
    "sv": ("Swedish", "swe_Latn"),
    "th": ("Thai", "tha_Thai"),
    "tr": ("Turkish", "tur_Latn"),
    "uk": ("Ukrainian", "ukr_Cyrl"),
    "ur": ("Urdu", "urd_Arab"),
    "vi": ("Vietnamese", "vie_Latn"),
    "zh": ("Chinese", "zho_Hans"),
    "zh-Hant": ("Chinese (Traditional)", "zho_Hant"),
}

ALIASES: dict[str, str] = {
    "zh-hans": "zh",
    "zh-cn": "zh",
    "zt": "zh-Hant",  # LibreTranslate's code for traditional Chinese
    "zh-hant": "zh-Hant",
    "zh-tw": "zh-Hant",
    "nb": "no",
    "iw": "he",
    "pb": "pt",  # LibreTranslate's Brazilian Portuguese
    "pt-br": "pt",
}

NO_SPACE_BETWEEN_SENTENCES = frozenset({"ja", "zh", "zh-Hant", "th"})
"""Scripts whose sentences follow each other without a space."""


def normalize(code: str) -> str:
    """The canonical code for ``code`` (case and LibreTranslate's aliases folded)."""
    folded = code.strip().replace("_", "-").lower()
    if folded in ALIASES:
        return ALIASES[folded]
    for known in LANGUAGES:
        if known.lower() == folded:
            return known
    return folded


def name_of(code: str) -> str:
    entry = LANGUAGES.get(code)
    return entry[0] if entry else code


def nllb_code(code: str) -> str | None:
    entry = LANGUAGES.get(code)
    return entry[1] if entry else None
