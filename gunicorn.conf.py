"""Gunicorn settings for HotDash in production (`gunicorn --config gunicorn.conf.py hotdash.wsgi`).

Everything that differs between hosts comes from the environment:

* ``PORT`` (8080) and ``HOST`` (0.0.0.0): where to listen.
* ``WEB_CONCURRENCY`` (2): worker processes; ``WEB_THREADS`` (4): threads in each.
* ``TRUSTED_PROXIES``: the TLS proxy's addresses or networks, the same list Django uses
  (hotdash/settings.py). Only their X-Forwarded-* headers set the request's scheme here too.
"""

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a positive whole number; got {raw!r}.")
    return int(raw)


bind = [f"{os.environ.get('HOST', '0.0.0.0')}:{_positive('PORT', 8080)}"]
# Threads serve the pages' polling and the API while a request waits on the database; the
# processes use the cores.
worker_class = "gthread"
workers = _positive("WEB_CONCURRENCY", 2)
threads = _positive("WEB_THREADS", 4)
# A worker silent this long is killed and replaced.
timeout = 30
# SIGTERM: stop accepting, let requests in flight finish for up to this long, exit 0. Keep it
# below the platform's kill timeout (fly.toml kill_timeout, systemd TimeoutStopSec).
graceful_timeout = 25
# The proxy in front keeps connections open between requests.
keepalive = 75
# Replace each worker now and then, so a slow leak never grows without bound (bench/memory.py
# finds none). Rarely: a new worker costs about a second of CPU (imports, connections) and
# answers slowly at first, and the old one closes its keep-alive connections. At 20,000 a
# burst of GitHub deliveries (1,000 a second) replaced both workers every 40 s: in the webhook
# benchmark (44,000 deliveries) each worker was replaced mid-run and the load generator saw
# connections closed under it (wrk read errors and time-outs); at 1,000,000, none.
max_requests = 1_000_000
max_requests_jitter = 100_000

# One line per request on stdout; errors on stderr (the platform collects both). The request
# line has no query string: filters are not worth logging and tokens must never be.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = (
    '%(h)s forwarded=%({x-forwarded-for}i)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
)
# Builds only the fields above, not gunicorn's ~60 per request (see the class).
logger_class = "hotdash.access_log.AccessLogger"

# Same trust as Django's: unset means no proxy's X-Forwarded-Proto is believed.
forwarded_allow_ips = os.environ.get("TRUSTED_PROXIES", "")
# No runtime control socket (nothing uses gunicornc), so nothing is written under $HOME.
control_socket_disable = True
