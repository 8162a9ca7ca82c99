# syntax=docker/dockerfile:1
# The light image: the gateway (Litestar) and the Celery batch worker. No torch, no model.
#   docker build -f deploy/docker/gateway.Dockerfile -t babelstack/gateway:0.1.0 .
# Base images are pinned to an exact tag; pin the digest too where your registry policy asks
# for it (docker buildx imagetools inspect python:3.11.14-slim-bookworm).

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
# The batch extra comes with the Celery batch worker; pip only warns where it is absent.
RUN /opt/venv/bin/pip install ".[gateway,batch]"

FROM python:3.11.14-slim-bookworm
RUN groupadd --gid 10001 babel \
    && useradd --uid 10001 --gid babel --no-create-home --home-dir /tmp --shell /usr/sbin/nologin babel \
    && mkdir -p /data/batch \
    && chown -R 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    BABEL_GATEWAY_HOST=0.0.0.0 \
    BABEL_GATEWAY_PORT=8080 \
    BABEL_BATCH_DIR=/data/batch
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080
# Ready = Redis reachable and the required services have a live worker (GET /readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["babelstack", "health", "gateway"]
CMD ["python", "-m", "services.gateway"]
