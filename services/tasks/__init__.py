"""Tasks service: language identification (translation and sentiment come next)."""

__version__ = "0.1.0"
