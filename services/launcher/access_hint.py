"""What ``babelstack up`` says about API keys: off on loopback (and how to turn them on),
or required (and how to make one)."""

from __future__ import annotations

from collections.abc import Mapping

from services.gateway.access.settings import AccessSettings, keys_required
from shared.settings import load_settings

CREATE = "babelstack keys create --name me --scopes all"


def access_lines(host: str, environ: Mapping[str, str]) -> list[str]:
    settings = load_settings(AccessSettings, environ)
    if keys_required(settings, host):
        return [
            "  API keys   required; make one in another terminal:",
            f"             {CREATE}",
        ]
    if settings.auth == "off":
        return ["  API keys   off (BABEL_AUTH=off): anyone who reaches the port is served"]
    return [
        f"  API keys   off: the gateway listens on loopback ({host}) only. To require keys,",
        f"             start with BABEL_AUTH=on (or --host 0.0.0.0), then: {CREATE}",
    ]
