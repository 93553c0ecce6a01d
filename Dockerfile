# syntax=docker/dockerfile:1
# Build a wheel in one stage, install it into a slim runtime as a non-root user in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TOKENBOT_DATABASE_URL=sqlite:////data/tokenbot.db
RUN useradd --create-home --uid 10001 tokenbot \
    && mkdir -p /data \
    && chown tokenbot:tokenbot /data
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
USER tokenbot
WORKDIR /data
# The SQLite database lives here; mount a volume to keep decisions across restarts.
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["tokenbot"]
CMD ["serve"]
