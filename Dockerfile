# HotDash production image: one image, three processes (fly.toml [processes]; docs/deploy.md).
#   web:    gunicorn --config gunicorn.conf.py hotdash.wsgi   (the default command)
#   worker: celery -A hotdash worker ...
#   beat:   celery -A hotdash beat ...   (exactly one)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PORT=8080 \
    HOTDASH_VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles

# pg_dump and pg_restore (the backup job runs them on workers) from the PostgreSQL project's
# repository, of the server's major version: a newer client writes dumps an older server
# cannot restore, Debian's own is too old for a current server. Build with
# --build-arg PG_MAJOR=17 for a PostgreSQL 17 server.
ARG PG_MAJOR=16
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

WORKDIR /app
COPY . /app

# Hashed, compressed static files into the image. Settings need a key and a mode to load;
# these exist only for this command and never reach the running processes.
RUN SECRET_KEY=collectstatic-only SANDBOX_MODE=true HOTDASH_VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var

# The code stays root's (read-only to the app); only runtime state is writable.
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home hotdash \
    && mkdir -p /app/var \
    && chown hotdash:hotdash /app/var
USER hotdash

EXPOSE 8080
# For `docker run` of the web process; Fly uses fly.toml's checks instead. Worker and beat
# containers serve no HTTP: run them with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "hotdash.wsgi"]
