"""Text processing for retrieval: extraction, sentences, chunks, BM25 tokens, rank fusion.

Pure functions; nothing is loaded at import time (jieba's dictionary and the character
classes are built on first use, or by ``lexical.warm_up()``).
"""

from services.retrieval.text.chunking import Chunk, chunk_text
from services.retrieval.text.extract import extract_text
from services.retrieval.text.fusion import rrf
from services.retrieval.text.lexical import fts_query, tokenize
from shared.text.sentences import sentence_spans

__all__ = ["Chunk", "chunk_text", "extract_text", "fts_query", "rrf", "sentence_spans", "tokenize"]
