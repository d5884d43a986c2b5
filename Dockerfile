# syntax=docker/dockerfile:1
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# Locked dependencies first (cached while only the code changes), then the code.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
COPY alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
COPY console/dist ./console/dist
RUN uv sync --frozen --no-default-groups

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 cashback
WORKDIR /app
COPY --from=build --chown=cashback:cashback /app /app
ENV PATH="/app/.venv/bin:$PATH" CASHBACK_ENV=production PYTHONUNBUFFERED=1
USER cashback
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
# `cashback worker` and `cashback migrate` run from the same image.
CMD ["cashback", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
