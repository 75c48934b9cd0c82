# syntax=docker/dockerfile:1
# The base is an argument only so that scripts/image-check can build where no registry is
# reachable (it makes a stand-in from Debian's packages); a plain build uses python:3.11-slim.
ARG PYTHON_IMAGE=python:3.11-slim
# The console's GOV.UK Frontend assets (app/console/static) are fetched from the npm registry
# by the project's set-up (scripts/console-assets, run by scripts/bootstrap) before the build,
# and reach the image with app/: the build needs no Node.js and no registry of its own.

FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ONLY_BINARY=:all:
WORKDIR /src
# The dependencies from pyproject.toml alone (an empty package stands in for app/), so a
# dependency added there needs no edit here, and a change to the code or the README rebuilds
# neither this layer nor the image's copy of it. Wheels only: the slim base has no compiler,
# and a dependency that would need one should fail here, loudly, not half-build.
COPY pyproject.toml ./
RUN mkdir app && touch app/__init__.py README.md \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet . \
 && /opt/venv/bin/pip uninstall --quiet --yes prap

# The application on its own (/opt/prap, on PYTHONPATH): a code change is a layer of its size.
FROM dependencies AS application
COPY README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install --quiet --no-deps --target /opt/prap .

# Nothing installs into the image at run time: pip and setuptools stay behind. Bytecode stays
# compiled (pip's default): 40 MB more (142 MB against 104), but `import app.main` takes
# 0.8-0.9 s instead of 4.0-4.3 s in every worker of every replica, at every start (measured
# by scripts/image-check's base; PYTHONDONTWRITEBYTECODE: the service could not keep them).
FROM dependencies AS runtime-dependencies
RUN /opt/venv/bin/pip uninstall --quiet --yes pip setuptools

FROM ${PYTHON_IMAGE}
# uvicorn reads UVICORN_HOST, UVICORN_PORT and WEB_CONCURRENCY (workers) itself, so
# `-e WEB_CONCURRENCY=4` or another port needs no new command line.
ENV PATH=/opt/prap/bin:/opt/venv/bin:$PATH PYTHONPATH=/opt/prap \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PRAP_DATABASE_URL=sqlite+aiosqlite:////data/prap.db \
    UVICORN_HOST=0.0.0.0 UVICORN_PORT=8000 WEB_CONCURRENCY=2
# A numeric user, so that Kubernetes' runAsNonRoot can verify it; the code stays root's, so
# the service cannot rewrite itself; only /data (the SQLite default) is the service's.
RUN groupadd --gid 10001 prap \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /srv --shell /usr/sbin/nologin prap \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=runtime-dependencies /opt/venv /opt/venv
COPY --from=application /opt/prap /opt/prap
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('UVICORN_PORT', '8000'), timeout=2).status != 200)"]
# Migrations first (idempotent; replicas queue on a PostgreSQL advisory lock), then the server.
CMD ["sh", "-c", "alembic upgrade head && exec uvicorn app.main:app --proxy-headers --no-access-log"]
