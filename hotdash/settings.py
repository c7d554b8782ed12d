"""HotDash settings: the only settings module. Every knob comes from the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from hotdash.env import (
    database_from_url,
    email_from_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HOTDASH_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off. Set SECRET_KEY to a long random string "
            "(or DEBUG=true for local development)."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
# Origins allowed to POST besides the request's own host (e.g. https://hotdash.example.com).
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Peers whose X-Forwarded-For and X-Forwarded-Proto are believed (hotdash.permissions.client_ip):
# comma-separated addresses or networks of the TLS-terminating proxy. Unset: no proxy trusted.
try:
    TRUSTED_PROXIES = [
        ipaddress.ip_network(item, strict=False) for item in env_list("TRUSTED_PROXIES", [])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES must list IP addresses or networks: {exc}."
    ) from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "hotdash",
    "deployments",
    "approvals",
]

MIDDLEWARE = [
    # Request id (from X-Request-ID or new, echoed) and user on the request's log lines.
    "hotdash.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # POST /webhooks/github leaves here, with its host and query string checked: the
    # signature is its authentication and its answer is no page (see the class).
    "deployments.webhooks.GitHubWebhookMiddleware",
    "hotdash.security.ContentSecurityPolicyMiddleware",
    # Early, so the answers that leave the stack before its end (the health probe) carry it too.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Before anything reads the Host header (see the class).
    "hotdash.health.HealthProbeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hotdash.input_gate.InputGateMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "hotdash.security.PrivateCacheMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Times in the signed-in user's zone (from their session).
    "deployments.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "approvals.middleware.AdminClientIPMiddleware",
    # DEBUG only: the house 404 page instead of the technical one.
    "hotdash.error_pages.HouseNotFoundMiddleware",
]

ROOT_URLCONF = "hotdash.urls"
WSGI_APPLICATION = "hotdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hotdash.context_processors.hotdash",
            ],
        },
    }
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'hotdash.sqlite3'}")
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat processes share the file: WAL lets readers run beside the writer,
    # and IMMEDIATE transactions take the write lock up front instead of failing mid-way
    # with "database is locked" when two writers upgrade at once.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # Session limits (ms, 0 = none) so a runaway query, a lock queue or a transaction left open
    # by a stuck worker fails fast instead of holding a connection and its locks. A command
    # that legitimately runs longer sets its own (bench/audit.py seeding).
    DATABASES["default"]["OPTIONS"] = {
        "options": " ".join(
            f"-c {name}={env_int(var, default, minimum=0)}"
            for name, var, default in (
                ("statement_timeout", "DATABASE_STATEMENT_TIMEOUT_MS", 30_000),
                ("lock_timeout", "DATABASE_LOCK_TIMEOUT_MS", 10_000),
                (
                    "idle_in_transaction_session_timeout",
                    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                    60_000,
                ),
            )
        )
    }
    # Parameters sent apart from the SQL (not quoted into it by psycopg), so a query's text
    # repeats and psycopg prepares it from its 5th run on a connection: PostgreSQL then skips
    # planning (a page's backend CPU drops by ~40%). Off behind a transaction-pooling proxy
    # (PgBouncer), whose server connections do not keep a client's prepared statements.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"] |= {"server_side_binding": True, "prepare_threshold": 5}
# Connections outlive a request or a Celery task (opening one to PostgreSQL costs ~10 ms);
# an unusable or older one is replaced, around Celery tasks too (hotdash/celery.py).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ATOMIC_REQUESTS = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

SESSION_ENGINE = "hotdash.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "approvals.views.csrf_failure"  # audits refused POSTs
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# HTTP is redirected to HTTPS, except /health: load balancers probe it over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health$"]
if TRUSTED_PROXIES:
    # Only behind a trusted proxy that sets it: otherwise any client could claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
# Both bind every subdomain of the host to HTTPS (preload: for years), so they are opt-in;
# check --deploy's reminders about them (W005, W021) are silenced for that reason.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's output. The image collects it at build time into a directory of its own,
# apart from HOTDASH_VAR_DIR (runtime state, writable by the app user).
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Without DEBUG: content-hashed names (cached forever by browsers) and gzipped copies,
    # served by WhiteNoise from STATIC_ROOT; collectstatic must have run. With DEBUG (and in
    # the tests) files come straight from the finders, so nothing needs collecting.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss"))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Kombu's Redis transport, fixed so losing Redis mid-task does not kill the worker.
    CELERY_BROKER_TRANSPORT = "hotdash.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
        "retry_on_timeout": True,
        "health_check_interval": 25,
        "max_retries": 3,
    }
else:
    # No server needed: kombu's filesystem transport, still served by a real worker process.
    BROKER_DIR = VAR_DIR / "broker"
    for sub in ("in", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 900
CELERY_TASK_SOFT_TIME_LIMIT = 840
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_MAX_TASKS_PER_CHILD = 200
# The execution model of `celery worker` (--pool and --concurrency override these). Tasks
# spend their slot waiting on Fly and GitHub over HTTP, not on the CPU (0.3 CPU-s in a rollout
# that holds a slot for seconds), so a pool of threads serves many rollouts per process; each
# thread keeps its own database connection (plan PostgreSQL's max_connections for workers x
# concurrency). Waits are never slept in a slot: deploys re-send themselves with a countdown
# and GitHub writes go through the paced outbox (services/github_reports.py).
CELERY_WORKER_POOL = "threads"
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 16, minimum=1)
# Celery's Django fixup otherwise closes every connection around every task.
CELERY_DB_REUSE_MAX = CELERY_WORKER_MAX_TASKS_PER_CHILD
CELERY_ENABLE_UTC = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = False
# Beat's record of when each entry last ran; `celery beat --schedule` overrides it.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "audit-verify": {
        "task": "approvals.tasks.audit_verify",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "worker-heartbeat": {
        "task": "deployments.tasks.ops.worker_heartbeat",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    # Catches release webhooks GitHub never delivered (or we dropped).
    "release-reconcile": {
        "task": "deployments.tasks.releases.release_reconcile",
        "schedule": 300.0,
        "options": {"expires": 300},
    },
    "github-reports-resend-stuck": {
        "task": "deployments.tasks.github_reports.github_reports_resend_stuck",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "webhook-deliveries-resend-stuck": {
        "task": "deployments.tasks.webhooks.webhook_deliveries_resend_stuck",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "webhook-payloads-prune": {
        "task": "deployments.tasks.webhooks.webhook_payloads_prune",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    # Outgoing notifications whose task message or worker was lost.
    "notifications-resend-stuck": {
        "task": "deployments.tasks.notifications.notification_resend_stuck",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Operational alerts (stale workers, a broken audit chain, failing webhook deliveries).
    "alerts-evaluate": {
        "task": "deployments.tasks.alerts.alerts_evaluate",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Approvers are reminded once when half a request's lifetime has passed.
    "approval-reminders": {
        "task": "deployments.tasks.notifications.approval_reminders_send",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    "preview-orphan-sweep": {
        "task": "deployments.tasks.previews.preview_orphan_sweep",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "preview-expire-sweep": {
        "task": "deployments.tasks.previews.preview_expire_sweep",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "preview-state-refresh": {
        "task": "deployments.tasks.previews.preview_state_refresh",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    "deploy-reconcile": {
        "task": "deployments.tasks.deploys.deploy_reconcile",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
    # How each environment's machines differ from its declared config (audited on change).
    "drift-sweep": {
        "task": "deployments.tasks.drift.drift_sweep",
        "schedule": 900.0,
        "options": {"expires": 900},
    },
    # Every environment's public health URL, probed concurrently (deployments.services.uptime).
    "uptime-probe-round": {
        "task": "deployments.tasks.uptime.uptime_probe_round",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "uptime-probes-roll-up": {
        "task": "deployments.tasks.uptime.uptime_probes_roll_up",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    "approval-sweep": {
        "task": "deployments.tasks.approvals.approval_sweep",
        "schedule": 30.0,
        "options": {"expires": 30},
    },
}

# --- Backups of HotDash's own database (deployments.services.backups) ----------------------
# Each run writes a directory (dump + manifest.json) under BACKUP_DIR, restores it into a scratch
# database to prove it, and keeps the newest BACKUP_KEEP directories.
BACKUP_DIR = Path(env_str("BACKUP_DIR") or VAR_DIR / "backups")
BACKUP_KEEP = env_int("BACKUP_KEEP", 8, minimum=1)
# Longest a pg_dump or pg_restore may run; the job's task limit follows from it.
BACKUP_TIMEOUT_SECONDS = env_int("BACKUP_TIMEOUT_SECONDS", 3600, minimum=10)


def _crontab(name: str, value: str) -> crontab:
    """A beat schedule from five crontab fields in UTC, or a start-up error naming ``name``."""
    try:
        return crontab.from_string(" ".join(value.split()))
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{name} must be a crontab line such as '0 3 * * sun' "
            f"(minute hour day-of-month month day-of-week); got {value!r}: {exc}"
        ) from None


# Five crontab fields in UTC (minute hour day-of-month month day-of-week): Sundays at 03:00.
BACKUP_SCHEDULE = env_str("BACKUP_SCHEDULE", "0 3 * * sun")
CELERY_BEAT_SCHEDULE["backup-and-drill"] = {
    "task": "deployments.tasks.backups.backup_scheduled",
    "schedule": _crontab("BACKUP_SCHEDULE", BACKUP_SCHEDULE),
    # A run that could not start within a day waits for the next week's.
    "options": {"expires": 24 * 3600},
}

# --- The compliance sweep (deployments.services.compliance) ----------------------------------
# Every app's branch protection, CI, repository security, secrets, machines and stuck work,
# daily at 06:00 UTC by default (crontab fields, as BACKUP_SCHEDULE).
COMPLIANCE_SWEEP_SCHEDULE = env_str("COMPLIANCE_SWEEP_SCHEDULE", "0 6 * * *")
CELERY_BEAT_SCHEDULE["compliance-sweep"] = {
    "task": "deployments.tasks.compliance.compliance_sweep_job",
    "schedule": _crontab("COMPLIANCE_SWEEP_SCHEDULE", COMPLIANCE_SWEEP_SCHEDULE),
    "options": {"expires": 12 * 3600},
}
# How many apps' upstreams are read at once (one thread each).
COMPLIANCE_SWEEP_CONCURRENCY = env_int("COMPLIANCE_SWEEP_CONCURRENCY", 64, minimum=1)
# Approval requests pending this long past their expiry, and webhook deliveries unprocessed
# this long, are reported as stuck work.
COMPLIANCE_STUCK_AFTER_SECONDS = env_int("COMPLIANCE_STUCK_AFTER_SECONDS", 3600, minimum=60)
# Deploy engine: a worker's lease on a deploy, how often waits re-check, when to give up.
DEPLOY_LEASE_SECONDS = env_int("DEPLOY_LEASE_SECONDS", 60, minimum=1)
DEPLOY_MAX_ATTEMPTS = env_int("DEPLOY_MAX_ATTEMPTS", 5, minimum=1)
DEPLOY_POLL_SECONDS = env_int("DEPLOY_POLL_SECONDS", 5, minimum=0)
DEPLOY_QUEUE_POLL_SECONDS = env_int("DEPLOY_QUEUE_POLL_SECONDS", 5, minimum=0)
DEPLOY_DISPATCH_GRACE_SECONDS = env_int("DEPLOY_DISPATCH_GRACE_SECONDS", 30, minimum=0)
DEPLOY_FLY_LEASE_SECONDS = env_int("DEPLOY_FLY_LEASE_SECONDS", 30, minimum=1)
# How long a deploy waits for a machine leased by someone else before it fails.
DEPLOY_FLY_LEASE_WAIT_SECONDS = env_int("DEPLOY_FLY_LEASE_WAIT_SECONDS", 600, minimum=1)
# /metrics answers only with `Authorization: Bearer <METRICS_TOKEN>`; unset, only in DEBUG or
# sandbox mode.
METRICS_TOKEN = env_str("METRICS_TOKEN")

# --- E-mail (requesters are told how their deploys went) --------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "hotdash@localhost")
# EMAIL_URL (smtp://user:pass@host:587/?tls=true, smtps://…, console://) instead of the above.
EMAIL_URL = env_str("EMAIL_URL")
if EMAIL_URL:
    if EMAIL_HOST:
        raise ImproperlyConfigured(
            "Set EMAIL_URL or EMAIL_HOST, not both: they say the same thing."
        )
    (
        EMAIL_BACKEND,
        EMAIL_HOST,
        EMAIL_PORT,
        EMAIL_HOST_USER,
        EMAIL_HOST_PASSWORD,
        EMAIL_USE_TLS,
        EMAIL_USE_SSL,
    ) = email_from_url(EMAIL_URL)
# Without an SMTP host, e-mails are printed on the console (DEBUG) or not sent at all.
elif not EMAIL_HOST:
    EMAIL_BACKEND = (
        "django.core.mail.backends.console.EmailBackend"
        if DEBUG
        else "django.core.mail.backends.dummy.EmailBackend"
    )

# --- Uptime probes (deployments.services.uptime) ----------------------------------------------
# Each probe of an environment's public URL + health path gives up after this many seconds.
UPTIME_PROBE_TIMEOUT_SECONDS = env_int("UPTIME_PROBE_TIMEOUT_SECONDS", 5, minimum=1)
# How many environments one round probes at once (one thread each).
UPTIME_PROBE_CONCURRENCY = env_int("UPTIME_PROBE_CONCURRENCY", 64, minimum=1)
# Down after this many failed probes in a row; up again after this many successes in a row.
UPTIME_DOWN_AFTER = env_int("UPTIME_DOWN_AFTER", 3, minimum=1)
UPTIME_UP_AFTER = env_int("UPTIME_UP_AFTER", 2, minimum=1)
# Probes older than this many hours are rolled up into one row per environment and hour, and
# those rows dropped after the days below (at least 8: the 7 d uptime reads a week of hours).
UPTIME_PROBE_RAW_HOURS = env_int("UPTIME_PROBE_RAW_HOURS", 48, minimum=1)
UPTIME_PROBE_HOURLY_RETENTION_DAYS = env_int("UPTIME_PROBE_HOURLY_RETENTION_DAYS", 30, minimum=8)
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 6, minimum=1)
NOTIFICATION_TIMEOUT_SECONDS = env_int("NOTIFICATION_TIMEOUT_SECONDS", 5, minimum=1)

# --- Sign-in throttling (approvals.auth) -----------------------------------------------------
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 15 * 60, minimum=1)
LOGIN_THROTTLE_USERNAME_LIMIT = env_int("LOGIN_THROTTLE_USERNAME_LIMIT", 5, minimum=1)
LOGIN_THROTTLE_IP_LIMIT = env_int("LOGIN_THROTTLE_IP_LIMIT", 20, minimum=1)
# Throttle counts (and other short-lived counters) must be shared by every web process: set
# CACHE_URL to a Redis database of its own (clearing a Redis cache empties its whole database,
# which must never be the broker's). Unset: each process keeps its own counts in memory.
CACHE_URL = env_url("CACHE_URL", "", schemes=("redis", "rediss"))
if CACHE_URL:
    if CACHE_URL == REDIS_URL:
        raise ImproperlyConfigured(
            "CACHE_URL must be a different Redis database from REDIS_URL (the broker's): "
            "clearing the cache empties its database."
        )
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }

# --- Fly.io and GitHub ----------------------------------------------------------------------
SANDBOX_PORT = env_int("SANDBOX_PORT", 8001, minimum=1)
FLY_API_TOKEN = env_str("FLY_API_TOKEN")
GITHUB_TOKEN = env_str("GITHUB_TOKEN")
# A GitHub App instead of a personal token: its id and private key (the PEM text; "\n" escapes
# are read as line breaks). Each repository then uses the token of the App installation that
# covers it (hotdash.integrations.github_app).
GITHUB_APP_ID = env_str("GITHUB_APP_ID")
GITHUB_APP_PRIVATE_KEY = env_str("GITHUB_APP_PRIVATE_KEY").replace("\\n", "\n")
if bool(GITHUB_APP_ID) != bool(GITHUB_APP_PRIVATE_KEY):
    raise ImproperlyConfigured(
        "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY must be set together (the App's id and the "
        "private key GitHub generated for it), or neither to use GITHUB_TOKEN."
    )
if GITHUB_APP_ID and not GITHUB_APP_ID.isdigit():
    raise ImproperlyConfigured("GITHUB_APP_ID must be the App's numeric id (its settings page).")
if GITHUB_APP_PRIVATE_KEY and "PRIVATE KEY-----" not in GITHUB_APP_PRIVATE_KEY:
    raise ImproperlyConfigured(
        "GITHUB_APP_PRIVATE_KEY must be the App's private key in PEM format (the text of the "
        ".pem file GitHub generated, from -----BEGIN RSA PRIVATE KEY----- on)."
    )
_github_auth = GITHUB_TOKEN or GITHUB_APP_ID
# Sandbox mode simulates Fly.io and GitHub (and accepts a public webhook secret). With DEBUG it
# is the default when a token is missing; without DEBUG it must be asked for by name.
SANDBOX_MODE = env_bool("SANDBOX_MODE", DEBUG and not (FLY_API_TOKEN and _github_auth))
if not SANDBOX_MODE and not (FLY_API_TOKEN and _github_auth):
    _missing = " and ".join(
        name
        for name, value in (("FLY_API_TOKEN", FLY_API_TOKEN), ("GITHUB_TOKEN", _github_auth))
        if not value
    )
    raise ImproperlyConfigured(
        f"{_missing} must be set unless SANDBOX_MODE=true (never chosen silently when DEBUG is "
        "off). Set the real tokens, or SANDBOX_MODE=true to use the built-in Fly.io/GitHub "
        "simulation."
    )
_sandbox_base = f"http://127.0.0.1:{SANDBOX_PORT}"
# The sandbox's own address (its read-only GitHub and Fly app pages: hotdash.links).
SANDBOX_URL = _sandbox_base
FLY_API_URL = env_url(
    "FLY_API_URL",
    f"{_sandbox_base}/fly/v1" if SANDBOX_MODE else "https://api.machines.dev/v1",
    schemes=("http", "https"),
)
GITHUB_API_URL = env_url(
    "GITHUB_API_URL",
    f"{_sandbox_base}/github" if SANDBOX_MODE else "https://api.github.com",
    schemes=("http", "https"),
)
if SANDBOX_MODE:
    FLY_API_TOKEN = FLY_API_TOKEN or "sandbox-fly-token"
    GITHUB_TOKEN = GITHUB_TOKEN or "sandbox-github-token"
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET")
if not GITHUB_WEBHOOK_SECRET and SANDBOX_MODE:
    GITHUB_WEBHOOK_SECRET = "sandbox-webhook-secret"
# "Sign in with GitHub" (an OAuth app): shown on the login page when a client id is set; the
# sandbox's own OAuth client in sandbox mode. GITHUB_WEB_URL hosts the OAuth pages.
GITHUB_WEB_URL = env_url(
    "GITHUB_WEB_URL",
    _sandbox_base if SANDBOX_MODE else "https://github.com",
    schemes=("http", "https"),
)
GITHUB_OAUTH_CLIENT_ID = env_str("GITHUB_OAUTH_CLIENT_ID")
GITHUB_OAUTH_CLIENT_SECRET = env_str("GITHUB_OAUTH_CLIENT_SECRET")
if SANDBOX_MODE and not GITHUB_OAUTH_CLIENT_ID:
    GITHUB_OAUTH_CLIENT_ID = "sandbox-oauth-client"
    GITHUB_OAUTH_CLIENT_SECRET = GITHUB_OAUTH_CLIENT_SECRET or "sandbox-oauth-secret"
if GITHUB_OAUTH_CLIENT_ID and not GITHUB_OAUTH_CLIENT_SECRET:
    raise ImproperlyConfigured(
        "GITHUB_OAUTH_CLIENT_SECRET must be set with GITHUB_OAUTH_CLIENT_ID (Sign in with GitHub)."
    )
# How often beat re-reads the GitHub team memberships of everyone who signed in with GitHub.
GITHUB_ROLES_REFRESH_SECONDS = env_int("GITHUB_ROLES_REFRESH_SECONDS", 900, minimum=10)
CELERY_BEAT_SCHEDULE["github-roles-refresh"] = {
    "task": "deployments.tasks.github_accounts.github_roles_refresh_all",
    "schedule": float(GITHUB_ROLES_REFRESH_SECONDS),
    "options": {"expires": GITHUB_ROLES_REFRESH_SECONDS},
}
HTTP_TIMEOUT_SECONDS = env_int("HTTP_TIMEOUT_SECONDS", 30, minimum=1)
# Server-requested waits (Retry-After, rate-limit resets) up to this long are slept inside the
# API client; longer ones are raised so the task reschedules itself instead of holding a worker.
HTTP_MAX_SERVER_WAIT_SECONDS = env_int("HTTP_MAX_SERVER_WAIT_SECONDS", 10, minimum=0)
# GitHub asks for a pause of at least a second between mutating requests (POST/PATCH/PUT/DELETE).
GITHUB_MUTATION_SPACING_MS = env_int("GITHUB_MUTATION_SPACING_MS", 1000, minimum=0)
# GitHub sends at most 25 MB; the webhook view reads the raw stream under this cap itself.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 25 * 1024 * 1024, minimum=1024)
# Refused (unsigned) webhook deliveries: one audit event per address and reason per window.
REFUSAL_AUDIT_WINDOW_SECONDS = env_int("REFUSAL_AUDIT_WINDOW_SECONDS", 60, minimum=1)
# Stored delivery payloads are emptied after this many days; the delivery ids stay (replays).
WEBHOOK_PAYLOAD_RETENTION_DAYS = env_int("WEBHOOK_PAYLOAD_RETENTION_DAYS", 30, minimum=1)
# A delivery still "received" after this long lost its task message and is sent again.
WEBHOOK_STUCK_AFTER_SECONDS = env_int("WEBHOOK_STUCK_AFTER_SECONDS", 300, minimum=10)

# --- Audit --------------------------------------------------------------------------------
AUDIT_HMAC_KEY = env_str("AUDIT_HMAC_KEY")
if not AUDIT_HMAC_KEY:
    if not (DEBUG or SANDBOX_MODE):
        raise ImproperlyConfigured(
            "AUDIT_HMAC_KEY is required outside DEBUG/sandbox mode: it keys the audit hash chain."
        )
    AUDIT_HMAC_KEY = "sandbox-audit-key"
# Hourly signed exports of the chain head (approvals.audit.audit_anchor_write), outside the
# database. In production put it on write-once storage (e.g. synced to an object-lock bucket).
AUDIT_ANCHOR_DIR = Path(env_str("AUDIT_ANCHOR_DIR") or VAR_DIR / "audit-anchors")

# --- Demo ----------------------------------------------------------------------------------
DEMO_PASSWORD = env_str("DEMO_PASSWORD")

DEFAULT_EXCEPTION_REPORTER_FILTER = "hotdash.error_reporting.SecretsExceptionReporterFilter"
# json: one JSON object per line with the request/deploy/task context; text: one plain line.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text; got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One record, one line: user-supplied text (reasons, comments, branch names) cannot forge one.
    "formatters": {
        "single_line": {"()": "hotdash.security.SingleLineFormatter"},
        "json": {"()": "hotdash.logcontext.JsonFormatter"},
    },
    # Every handler masks Authorization/Bearer/FlyV1 values and the configured secrets.
    "filters": {
        "redact": {"()": "hotdash.security.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "refusals_without_traceback": {"()": "hotdash.error_pages.RefusalsWithoutTraceback"},
        "context": {"()": "hotdash.logcontext.ContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "single_line",
            "filters": ["redact", "refusals_without_traceback", "context"],
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "formatter": "single_line",
            "filters": ["require_debug_false", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's defaults for these, whose handlers would not mask anything.
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # httpx logs full request lines at INFO; keep URLs and headers out of the logs.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
