# Omotenashi service image: build wheels in one stage, run them slim and unprivileged.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip wheel
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY models ./models
COPY training ./training
COPY loadtests ./loadtests
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMOTENASHI_ENV=production \
    OMOTENASHI_DATA_DIR=/var/lib/omotenashi \
    OMOTENASHI_ARTIFACTS_DIR=/var/lib/omotenashi/artifacts
RUN useradd --system --uid 10001 --home-dir /var/lib/omotenashi --create-home omotenashi
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels omotenashi && rm -rf /wheels
USER omotenashi
WORKDIR /var/lib/omotenashi
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# Production needs REDIS_URL, OMOTENASHI_SECRET, OMOTENASHI_ADMIN_KEY, OMOTENASHI_SITE_KEYS.
ENTRYPOINT ["omotenashi"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
