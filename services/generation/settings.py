"""Settings of the generation service (prefix ``BABEL_GENERATION_``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from shared.settings import BaseSettings

EngineDtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]
"""The dtypes vLLM's engine arguments take."""


class GenerationSettings(BaseSettings, frozen=True, kw_only=True):
    env_prefix: ClassVar[str] = "BABEL_GENERATION_"
    model: str = "Qwen2.5-Coder-1.5B-Instruct"
    """A name prepared in the model cache (``babelstack models prepare``), a local
    Hugging Face folder, or a hub id already in the HF cache."""
    served_name: str | None = None
    """The model id clients use; None: the model's folder name."""
    max_model_len: int = 4_096
    """Context window the engine reserves per request (prompt + output)."""
    dtype: EngineDtype = "bfloat16"
    """The engine's dtype. bfloat16 (the models' own) is twice as fast as float32 on CPU and
    needs half the memory, but on some CPUs (AMX/AVX512-BF16 kernels) it answers nonsense for
    some models (``docs/vllm-cpu-notes.md``): the engine probe catches that and the worker
    serves float32 instead (:attr:`dtype_fallback`)."""
    probe: bool = True
    """Ask the engine known-answer questions before the worker reports ready."""
    dtype_fallback: bool = True
    """When the probe fails, rebuild the engine in float32 (with a warning) instead of
    refusing to become ready."""
    kv_cache_gib: int = 1
    """CPU only: KV-cache size in GiB (``VLLM_CPU_KVCACHE_SPACE``)."""
    gpu_memory_utilization: float = 0.85
    enforce_eager: bool = True
    """Skip graph capture/compilation (saves about a minute of start-up on CPU)."""
    max_num_seqs: int = 64
    """Sequences the engine batches at once (continuous batching)."""
    seed: int = 0
    max_prompt_chars: int = 200_000
    rag_min_score: float = 0.73
    """Floor: a dense cosine (question vs passage) below which a passage is never used, and
    no passage above it means the model is not asked. Low on purpose: absolute scores of
    multilingual-e5-small shift by language pair (``services/generation/relevance.py``)."""
    rag_min_margin: float = 0.015
    """The best hit must stand this far above the median score of the question's other
    hits (:attr:`rag_calibration_hits` of them) to be relevant. Measured on XQuAD (300
    questions, 9 language pairs, ``bench/rag_eval.py``): 96–100 % of the answerable questions
    pass in every pair; 13–23 % of the unanswerable are refused here, the rest by the model."""
    rag_calibration_hits: int = 20
    """Hits searched per question to calibrate the margin (only ``k`` go into the prompt)."""
    rag_model_judges: bool = True
    """The model replies ``{"answerable", "answer"}`` (structured output the engine enforces)
    and its "not answerable" becomes the fixed refusal; False: free text, the gate alone."""
    rag_attribution_min_score: float = 0.80
    """An answer sentence the model did not cite is attributed to the passage most similar to
    it (embedding cosine) when at least this similar."""
    rag_max_question_chars: int = 4_000
    rag_max_k: int = 20
    rag_max_passage_tokens: int = 400
    """Each passage is cut to this many tokens before it goes into the prompt."""
    rag_answer_tokens: int = 256
    """Tokens kept free for the answer when passages are fitted into the context."""
    rag_timeout_s: float = 30.0
