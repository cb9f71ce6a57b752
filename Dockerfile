# Grapevine bot image. Built by `docker compose build` (see config/deploy/README.md).
# Two stages so that compilers and pip's build leftovers stay out of the image
# that runs: the build stage fills a virtualenv, the runtime stage copies it.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# In case a dependency has no wheel for the platform and must be compiled.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps the virtualenv, tests, caches, data and .env out of this copy.
COPY . .
RUN pip install .

FROM python:3.11-slim
# A fixed, unprivileged user; /data is its volume (database key store, sync state).
RUN groupadd --system --gid 10001 grapevine \
    && useradd --system --uid 10001 --gid grapevine --home-dir /data --shell /usr/sbin/nologin grapevine \
    && mkdir -p /data \
    && chown grapevine:grapevine /data
COPY --from=build /opt/venv /opt/venv
# The data directory and listen address the container is built around; the
# environment wins over the TOML file, so these hold whatever the file says.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GRAPEVINE_BOT__DATA_DIR=/data \
    GRAPEVINE_WEB__LISTEN=0.0.0.0:8080
USER grapevine
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# slim images have no curl: ask the bot's own /health endpoint with Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
ENTRYPOINT ["grapevine"]
CMD ["run", "-c", "/data/grapevine.toml"]
