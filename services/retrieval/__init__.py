"""Retrieval service: multilingual embeddings, FAISS + SQLite collections, hybrid search."""

__version__ = "0.1.0"
