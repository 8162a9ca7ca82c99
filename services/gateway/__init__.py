"""The HTTP gateway (Litestar): validation, problem details, health, metrics, RPC calls."""

__version__ = "0.1.0"
