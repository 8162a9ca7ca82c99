"""Every environment variable the code reads: the settings structs' names, found in the source.

A settings struct is a subclass of ``shared.settings.BaseSettings``; its variables are
``env_prefix`` + each field's name in upper case. The modules that define one are found by
their text (``env_prefix: ClassVar``) and imported, so a new settings struct is picked up
without being listed here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import msgspec

from shared.settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
_PACKAGES = ("shared", "services")

DIRECT_VARIABLES = {
    "REDIS_URL": "shared/settings.py",
    "BABEL_STATE_DIR": "services/launcher/stack.py",
    "BABEL_URL": "services/launcher/cli.py",
    "BABEL_API_KEY": "services/launcher/work_cli.py",
}
"""Variables read outside a settings struct, and a file that reads each (checked by the tests)."""


@dataclass(frozen=True)
class Setting:
    name: str
    owner: str
    default: object


def settings_modules() -> list[str]:
    found = []
    for package in _PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            if "env_prefix: ClassVar" in path.read_text(encoding="utf-8"):
                module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
                found.append(module)
    return found


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def settings_catalog() -> dict[str, Setting]:
    """Every ``BABEL_*`` setting, by variable name."""
    for module in settings_modules():
        importlib.import_module(module)
    catalog: dict[str, Setting] = {}
    for cls in _subclasses(BaseSettings):
        if not cls.__module__.startswith(_PACKAGES):
            continue  # a struct a test defines for itself
        for field in msgspec.structs.fields(cls):
            name = f"{cls.env_prefix}{field.name.upper()}"
            default = field.default if field.default is not msgspec.NODEFAULT else None
            catalog[name] = Setting(
                name=name, owner=f"{cls.__module__}.{cls.__name__}", default=default
            )
    return catalog


def _env_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list | frozenset):
        return ",".join(str(v) for v in value)
    if isinstance(value, msgspec.Struct):
        return msgspec.json.encode(value).decode()
    return str(value)


ENV_EXAMPLE_HEADER = """\
# BabelStack settings for compose.yaml: cp .env.example .env, then edit.
# Generated from the settings structs by `python -m tests.support.settings_catalog`
# (tests/integration/test_deploy_files.py fails when a setting is missing here).
# Every line that starts with '# NAME=' shows a setting at its default; uncomment to change it.
# The README's "Configuration" table says what each means. compose.yaml and the images set
# REDIS_URL, BABEL_MODELS_DIR, BABEL_*_DATA_DIR and BABEL_GATEWAY_HOST/_PORT themselves.

# --- compose only (not read by BabelStack itself) -------------------------------------------
# Required: the password of the stack's Redis (REDIS_URL is built from it in compose.yaml).
REDIS_PASSWORD=
# REDIS_MAXMEMORY=1gb
# Where the gateway's port is published on the host (0.0.0.0:8080 to reach it from others).
# BABEL_PUBLISH=127.0.0.1:8080
# BABELSTACK_GATEWAY_IMAGE=babelstack/gateway:0.1.0
# BABELSTACK_WORKER_IMAGE=babelstack/worker:0.1.0
# BABELSTACK_WORKER_GPU_IMAGE=babelstack/worker-gpu:0.1.0
"""

COMPOSE_ONLY_VARIABLES = (
    "REDIS_PASSWORD",
    "REDIS_MAXMEMORY",
    "BABEL_PUBLISH",
    "BABELSTACK_GATEWAY_IMAGE",
    "BABELSTACK_WORKER_IMAGE",
    "BABELSTACK_WORKER_GPU_IMAGE",
)
"""Variables of ``.env`` that only compose.yaml interpolates."""


def env_example() -> str:
    """The text of ``.env.example``: compose's own variables, then every setting at its default."""
    lines = [ENV_EXAMPLE_HEADER]
    lines.append("# --- direct variables")
    lines.append("# REDIS_URL=  (compose.yaml sets it from REDIS_PASSWORD)")
    for name in sorted(set(DIRECT_VARIABLES) - {"REDIS_URL"}):
        lines.append(f"# {name}=")
    owner = ""
    for setting in sorted(settings_catalog().values(), key=lambda s: (s.owner, s.name)):
        if setting.owner != owner:
            owner = setting.owner
            lines.append(f"\n# --- {owner}")
        lines.append(f"# {setting.name}={_env_text(setting.default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(env_example(), end="")
