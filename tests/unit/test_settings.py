"""load_settings from a dict environment, without touching os.environ."""

from __future__ import annotations

from typing import ClassVar

import pytest

from shared.errors import BabelError, ErrorCode
from shared.settings import (
    BaseSettings,
    LogSettings,
    RedisSettings,
    WorkerSettings,
    load_settings,
)


class ListSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_T_"
    names: tuple[str, ...] = ()
    ports: list[int] = []
    ratio: float = 0.5


def test_defaults_when_environment_is_empty() -> None:
    assert load_settings(WorkerSettings, {}) == WorkerSettings()


def test_values_are_converted_to_field_types() -> None:
    settings = load_settings(
        WorkerSettings,
        {
            "BABEL_WORKER_CONCURRENCY": "8",
            "BABEL_WORKER_CLAIM_IDLE_MS": " 600 ",
            "BABEL_WORKER_GRACE_PERIOD_S": "2.5",
            "BABEL_OTHER_CONCURRENCY": "99",  # another prefix: ignored
        },
    )
    assert settings.concurrency == 8
    assert settings.claim_idle_ms == 600
    assert settings.grace_period_s == 2.5
    assert isinstance(settings.grace_period_s, float)


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("true", True), ("0", False)])
def test_booleans(raw: str, expected: bool) -> None:
    assert load_settings(LogSettings, {"BABEL_LOG_JSON": raw}).json is expected


def test_bad_value_raises_babel_error() -> None:
    with pytest.raises(BabelError) as caught:
        load_settings(WorkerSettings, {"BABEL_WORKER_CONCURRENCY": "many"})
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert "WorkerSettings" in str(caught.value)
    assert "concurrency" in str(caught.value)


def test_comma_separated_lists() -> None:
    settings = load_settings(ListSettings, {"BABEL_T_NAMES": "a, b ,,c", "BABEL_T_PORTS": "1,2, 3"})
    assert settings.names == ("a", "b", "c")
    assert settings.ports == [1, 2, 3]


def test_json_lists() -> None:
    settings = load_settings(ListSettings, {"BABEL_T_NAMES": '["x,y", "z"]'})
    assert settings.names == ("x,y", "z")


def test_overrides_win_and_none_overrides_are_ignored() -> None:
    env = {"BABEL_T_RATIO": "0.25"}
    assert load_settings(ListSettings, env, ratio=0.75).ratio == 0.75
    assert load_settings(ListSettings, env, ratio=None).ratio == 0.25


def test_redis_url_honours_conventional_name() -> None:
    assert RedisSettings.from_env({"REDIS_URL": "redis://h:1/2"}).url == "redis://h:1/2"
    assert RedisSettings.from_env({"BABEL_REDIS_URL": "redis://h:3/0"}).url == "redis://h:3/0"
    assert RedisSettings.from_env({}).url == RedisSettings().url
