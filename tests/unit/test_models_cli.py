"""``babelstack models``: which models ``prepare --only`` picks, and the listing."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.launcher.models_cli import DEFAULT_MODELS, chosen_models, models_app


def test_without_only_every_default_model_is_prepared() -> None:
    assert chosen_models(None) == list(DEFAULT_MODELS)
    assert DEFAULT_MODELS[0] == "multilingual-e5-small"
    assert set(DEFAULT_MODELS[1:]) == {"SmolLM2-135M-Instruct", "Qwen2.5-Coder-1.5B-Instruct"}


def test_only_keeps_the_default_order_and_drops_repeats() -> None:
    picked = chosen_models(
        ["SmolLM2-135M-Instruct", "multilingual-e5-small", "SmolLM2-135M-Instruct"]
    )
    assert picked == ["multilingual-e5-small", "SmolLM2-135M-Instruct"]


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(typer.BadParameter, match="unknown model"):
        chosen_models(["gpt-9"])


def test_list_of_an_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BABEL_MODELS_DIR", str(tmp_path))
    result = CliRunner().invoke(models_app, ["list"])
    assert result.exit_code == 0
    assert "no models in" in result.output
