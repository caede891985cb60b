# mappa-bot container image: the wheel built from this checkout, installed in a slim runtime.
#
#   docker build -t mappa-bot .
#   docker run --env-file .env -p 3000:3000 mappa-bot
#
# The image runs `mappa db upgrade` (create or upgrade the schema) and then `mappa serve`
# in HTTP mode on port 3000 (Slack posts to /slack/events; /healthz answers the health
# check). Settings come from the environment (see .env.example); compose.yaml runs two
# replicas on PostgreSQL. docs/operator-guide.md says which parts of this file the test
# suite checks (tests/deploy/test_deploy_files.py) and which it cannot (the build itself).

# The Python of the image; requirements.lock is compiled for 3.11, so change both together.
ARG PYTHON_VERSION=3.11

# ------------------------------------------------------------------ build: the wheel
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY . .
# Templates and migrations travel inside the wheel (package data), so the runtime stage
# needs nothing from the checkout but the wheel and the lock file.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ------------------------------------------------------------------ runtime
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 mappa \
 && useradd --system --uid 10001 --gid mappa --home-dir /app --create-home mappa \
 && mkdir -p /data && chown mappa:mappa /data

# pyproject.toml is copied only so that this COPY has a source when there is no lock file
# (a pattern that matches nothing is allowed beside one that matches).
COPY pyproject.toml requirements.loc[k] /tmp/deps/
COPY --from=build /dist/ /tmp/dist/
# With requirements.lock: every dependency at its pinned version, each file checked
# against its hash; then the wheel itself without resolving anything again.
# Without it: the wheel and the dependency ranges of pyproject.toml.
RUN set -eux; \
    if [ -f /tmp/deps/requirements.lock ]; then \
        pip install --require-hashes --no-deps -r /tmp/deps/requirements.lock; \
        pip install --no-deps /tmp/dist/*.whl; \
        pip check; \
    else \
        pip install /tmp/dist/*.whl; \
    fi; \
    rm -rf /tmp/deps /tmp/dist

USER mappa
WORKDIR /app
# A SQLite file on the /data volume unless MAPPA_DATABASE_URL says otherwise (compose.yaml
# points it at PostgreSQL, the multi-replica deployment).
ENV MAPPA_DATABASE_URL=sqlite:////data/mappa.db
VOLUME ["/data"]
EXPOSE 3000

# /healthz answers 200 when the database answers, 503 otherwise. The slim image has no
# curl; Python's urllib exits non-zero on any error or non-2xx status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4)"]

# Upgrade the schema, then replace the shell with the server so that it gets the signals.
CMD ["sh", "-c", "mappa db upgrade && exec mappa serve --host 0.0.0.0 --port 3000"]
