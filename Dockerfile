# oncely: one image for every role (scheduler, worker, api, up); the command picks the role.
# Build: docker build -t oncely .   Run: see deploy/docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/oncely
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/oncely --create-home oncely

# Your tasks: install your project into this image (FROM oncely, then pip install .) and
# start workers with --app yourproject.jobs:app.
USER oncely
WORKDIR /var/lib/oncely
ENV ONCELY_HOST=0.0.0.0 \
    ONCELY_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ONCELY_PORT', '8080'), timeout=2)"
ENTRYPOINT ["oncely"]
CMD ["up"]
