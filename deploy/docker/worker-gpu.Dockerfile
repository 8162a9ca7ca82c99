# syntax=docker/dockerfile:1
# The model-worker image for NVIDIA GPU nodes, built on the official vLLM image (CUDA, torch
# and vLLM as vLLM ships them), plus BabelStack with the generation-gpu and faiss-gpu extras.
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t babelstack/worker-gpu:0.1.0 .
# Same commands and health checks as worker.Dockerfile; models come from BABEL_MODELS_DIR.

FROM vllm/vllm-openai:v0.32.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# Keep the image's own torch and vLLM (built for its CUDA): they are constraints, not upgrades.
# The extras' torch==2.13.0 pin must agree with the image's torch, or this step fails loudly.
RUN pip freeze | grep -E '^(torch|vllm)==' > /tmp/keep.txt \
    && pip install --constraint /tmp/keep.txt ".[tasks,retrieval,faiss-gpu,generation-gpu]" \
    && rm -rf /src /tmp/keep.txt \
    && groupadd --gid 10001 babel \
    && useradd --uid 10001 --gid babel --no-create-home --home-dir /tmp --shell /usr/sbin/nologin babel \
    && mkdir -p /models /data/retrieval /data/tasks \
    && chown -R 10001:10001 /models /data
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    BABEL_MODELS_DIR=/models \
    BABEL_RETRIEVAL_DATA_DIR=/data/retrieval \
    BABEL_TASKS_DATA_DIR=/data/tasks
WORKDIR /tmp
USER 10001:10001
# The vLLM image's entrypoint starts its own OpenAI server; this image runs our worker.
ENTRYPOINT []
HEALTHCHECK --interval=15s --timeout=10s --start-period=900s --retries=3 \
    CMD ["babelstack", "health", "worker", "generation"]
CMD ["python3", "-m", "services.generation"]
