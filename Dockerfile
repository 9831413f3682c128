# The bot in one small image: `docker build -t twilio-bridge .` then
#   docker run -p 3000:3000 -v twilio-bridge-data:/data \
#     -e SLACK_SIGNING_SECRET=… -e SLACK_BOT_TOKEN=xoxb-… twilio-bridge
# SQLite in /data by default; with -e DATABASE_URL=postgresql://… -e SECRET_KEY=… it uses PostgreSQL instead
# (psycopg's binary wheel bundles libpq: no system package needed). docker-compose.yml runs two replicas.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db \
    HOST=0.0.0.0 \
    PORT=3000

WORKDIR /app

# Dependencies get their own layer: it is rebuilt only when pyproject.toml changes, not on every code edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code itself; its dependencies are already installed above.
COPY README.md manifest.yml ./
COPY bot ./bot
COPY storage ./storage
RUN pip install --no-deps . && rm -rf build *.egg-info

# Run as an unprivileged user that owns only the data directory (database and key file live there).
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin bot \
    && mkdir -p /data && chown bot:bot /data
USER bot
VOLUME /data
EXPOSE 3000

# slim has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '3000')}/healthz\", timeout=4)"]

ENTRYPOINT ["python", "-m", "bot"]
CMD ["serve"]
