"""Generation service: one vLLM engine fed many requests at once; OpenAI-shaped chat and
completions, and RAG answers grounded in the retrieval service."""

__version__ = "0.1.0"
