"""``BABEL_METRICS_PORT``: /metrics on a port of its own, without keys, for Prometheus.

On the API port /metrics needs the ``admin`` scope when keys are required (it names keys and
their usage); a scraper should not hold an admin key, so it reads this port instead, which a
deployment keeps off its Service/Ingress. The server runs in a thread of its own.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


def serve_metrics(port: int, host: str, registry: CollectorRegistry) -> WSGIServer | None:
    if port <= 0:
        return None
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
