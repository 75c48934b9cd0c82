# syntax=docker/dockerfile:1
# The console's GOV.UK Frontend assets, from the npm registry (scripts/console-assets).
FROM node:22-slim AS assets
WORKDIR /src
COPY scripts/console-assets ./scripts/
COPY app/console/frontend/package.json app/console/frontend/package-lock.json ./app/console/frontend/
RUN scripts/console-assets

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY --from=assets /src/app/console/static ./app/console/static
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PRAP_DATABASE_URL=sqlite+aiosqlite:////data/prap.db
RUN useradd --system --uid 10001 --home-dir /srv prap && mkdir -p /data && chown prap /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=prap alembic.ini ./
COPY --chown=prap migrations ./migrations
USER prap
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# Migrations first (idempotent; replicas queue on a PostgreSQL advisory lock), then the server.
CMD ["sh", "-c", "alembic upgrade head && exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --proxy-headers --no-access-log --workers ${WEB_CONCURRENCY:-2}"]
