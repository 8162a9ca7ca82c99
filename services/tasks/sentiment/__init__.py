"""Sentiment: a classifier head on frozen multilingual embeddings (default), or the LLM."""
