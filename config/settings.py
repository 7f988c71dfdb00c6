"""Settings, all from the environment (django-environ), with embedded defaults that let a
fresh checkout run: SQLite (WAL, IMMEDIATE transactions), eager Celery, the Stripe sandbox.

Every variable is listed in README.md. Production = DJANGO_DEBUG=0 plus SECRET_KEY,
ALLOWED_HOSTS, FIELD_ENCRYPTION_KEY and DATABASE_URL; then
`manage.py check --deploy --fail-level WARNING` passes.
"""
import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# A development key only when DEBUG: production must bring its own.
_DEV_SECRET_KEY = "dev-insecure-key-for-local-debug-only-never-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:%s" % env.str("PORT", default="8000")).rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    # Production (issue 16): beat schedule in the database, health checks, login throttling.
    "django_celery_beat",
    "health_check",
    "health_check.contrib.db_heartbeat",
    "health_check.cache",
    "axes",
    # htmx (issue 14): `request.htmx` for views that answer a partial update with a fragment.
    "django_htmx",
    "crm",
    "services",
    "finance",
    "stripe_integration",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Production: static files from the app processes themselves (WhiteNoise, no separate
    # file server); the embedded default's runserver serves them from the apps directly.
    *([] if DEBUG else ["whitenoise.middleware.WhiteNoiseMiddleware"]),
    "config.logs.RequestLogContextMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A person's Stripe action while the integration is disabled: a message, not a 500.
    "stripe_integration.runs.middleware.IntegrationDisabledMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.logs.RequestBusinessLogMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

# Overridable so that bench/webhooks.py can serve its floor view (bench/floor/urls.py) from
# the same settings and middleware, without any bench code in the app.
ROOT_URLCONF = env.str("ROOT_URLCONF", default="config.urls")
# The product's name, as the admin's header and title show it.
PRODUCT_NAME = "CRM & Finance"

# E-mail (issue 15: the auto-disable alert). The console backend by default: mails are
# printed to the server's output; set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
# and the EMAIL_HOST* variables for SMTP.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="crm@localhost")
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
                "crm.tenancy.business_context",
                "stripe_integration.runs.context.integration_banner",
                "finance.modes.mode_context",
            ],
        },
    },
]
WSGI_APPLICATION = "config.wsgi.application"

# SQLite by default. WAL lets readers run beside the writer, IMMEDIATE takes the write lock
# at BEGIN so two concurrent webhook transactions queue on busy_timeout instead of failing
# with "database is locked" when one upgrades from a read to a write lock.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "ui:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# WhiteNoise serves STATIC_ROOT (`bin/serve web` runs collectstatic) with hashed, compressed
# files in production; the embedded default keeps Django's plain storage (no collectstatic).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG
                    else "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The cache: per process by default; Redis (CACHE_URL=redis://...) when several processes or
# machines serve the app. The readiness check (/health/ready/) writes and reads it.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Apps whose migrations `bin/serve web` (manage.py migrate_locked) and the readiness check
# leave out. CI only; production leaves it empty.
MIGRATE_EXCEPT = env.list("MIGRATE_EXCEPT", default=[])

# --- Celery: no broker configured = eager, in-process (the embedded default) ----------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-task gives the task back
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")  # one per CI run: no stolen tasks
# Task modules beyond the apps' `tasks.py` (autodiscovered). Moved tasks keep their
# registered names (`name=` on each task), which the schedule below still uses.
CELERY_IMPORTS = [
    "stripe_integration.catalog.tasks", "stripe_integration.customers.tasks", "stripe_integration.invoicing.tasks",
    "stripe_integration.webhooks.tasks", "stripe_integration.payouts.tasks", "stripe_integration.importing.tasks",
]
# `celery -A config beat`: the webhook inbox's retry sweep (parked, failed, never-queued
# deliveries), the catch-up that lists events Stripe could not deliver, and the sweep of
# failed or stuck invoice pushes. Without a broker (the embedded default) there is no
# beat: `bin/run` starts `manage.py stripe_periodic`, which runs the same schedule.
CELERY_BEAT_SCHEDULE = {
    "stripe-invoice-push-sweep": {"task": "stripe_integration.invoicing.tasks.invoice_pushes_sweep_task",
                                  "schedule": 60.0},
    "stripe-webhook-retry": {"task": "stripe_integration.webhook_tasks.webhook_deliveries_retry_task", "schedule": 60.0},
    "stripe-catch-up": {"task": "stripe_integration.webhook_tasks.stripe_catch_up_task", "schedule": 30 * 60.0},
    # Payouts and what they carried (issue 15): what the payout.* webhooks missed.
    "stripe-payout-sync": {"task": "stripe_integration.payouts.tasks.payouts_sync_task", "schedule": 60 * 60.0},
    # Imports (issue 15): starts waiting ones (without a broker nothing else does) and
    # resumes those whose worker died; every 5 s so an import starts soon after connect.
    "stripe-import-sweep": {"task": "stripe_integration.importing.imports_sweep_task", "schedule": 5.0},
}
# Beat keeps the schedule in the database (django-celery-beat): at start it writes the
# entries above as Periodic tasks, which the operator (a superuser) can pause and re-time in
# the admin and finance can see (stripe_integration/admin/periodic.py); `manage.py
# stripe_periodic` (the embedded default's beat) honours the same rows. One beat process
# for the whole installation (`bin/serve beat`).
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Encryption at rest (tokens, webhook secrets): Fernet keys, comma-separated, first
# encrypts, all decrypt (rotation). In DEBUG a key is derived from SECRET_KEY so a fresh
# checkout runs; production must set FIELD_ENCRYPTION_KEY.
_field_keys = env.list("FIELD_ENCRYPTION_KEY", default=[])
if not _field_keys:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DJANGO_DEBUG=0")
    _field_keys = [base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()]
FIELD_ENCRYPTION_KEYS = _field_keys

# Where crm and services find the money rules (Stripe's currencies, precision, maximum):
# a lower app names the higher module here rather than importing it (crm.money_fields).
MONEY_RULES_MODULE = "finance.money"

# --- Stripe ---------------------------------------------------------------------------
# Unset STRIPE_SECRET_KEY = the offline sandbox (`make run` starts it and sets the bases).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_CONNECT_CLIENT_ID = env.str("STRIPE_CONNECT_CLIENT_ID", default="")
# Test and live side by side (issue 15): a key per mode, each with its Connect client id
# (Stripe gives an OAuth client id per mode). STRIPE_SECRET_KEY stays the single-mode form:
# it fills the slot of its own mode (sk_test_/rk_test_ or live). A key in the wrong
# slot is refused at startup (stripe_integration.connect.modes.settings_check).
STRIPE_TEST_SECRET_KEY = env.str("STRIPE_TEST_SECRET_KEY", default="")
STRIPE_LIVE_SECRET_KEY = env.str("STRIPE_LIVE_SECRET_KEY", default="")
STRIPE_TEST_CONNECT_CLIENT_ID = env.str("STRIPE_TEST_CONNECT_CLIENT_ID", default="")
STRIPE_LIVE_CONNECT_CLIENT_ID = env.str("STRIPE_LIVE_CONNECT_CLIENT_ID", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
STRIPE_CONNECT_BASE = env.str("STRIPE_CONNECT_BASE", default="https://connect.stripe.com").rstrip("/")
STRIPE_WEBHOOK_URL = env.str("STRIPE_WEBHOOK_URL", default=f"{SITE_URL}/stripe/webhook/")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# Webhook intake (stripe_integration/webhooks/intake.py). Signing secrets accepted besides the
# Connect endpoint's own (encrypted in the database): e.g. the previous one while a secret
# is rolled. Bodies above the size limit are refused with 413 unread.
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRETS", default=[])
STRIPE_WEBHOOK_MAX_BYTES = env.int("STRIPE_WEBHOOK_MAX_BYTES", default=1024 * 1024)
# How far back the periodic catch-up lists events (the command looks back 30 days).
STRIPE_CATCH_UP_HOURS = env.int("STRIPE_CATCH_UP_HOURS", default=72)
# --- Stripe calls: one shared limiter, our own retries, the invoice push (issue 6) ---
# Requests per second for ALL processes together; 0 = Stripe's limit for the key's mode
# (25 test, 100 live), counted over STRIPE_RATE_LIMIT_WINDOW seconds from each answer (see
# stripe_integration/gateway/ratelimit.py for why from the answer).
STRIPE_RATE_LIMIT_PER_SECOND = env.int("STRIPE_RATE_LIMIT_PER_SECOND", default=0)
STRIPE_RATE_LIMIT_WINDOW = env.float("STRIPE_RATE_LIMIT_WINDOW", default=1.01)
# Where the limiter lives: this Redis, else CELERY_BROKER_URL when it is Redis (and Celery
# is not eager), else in-process.
STRIPE_RATE_LIMIT_REDIS_URL = env.str("STRIPE_RATE_LIMIT_REDIS_URL", default="")
# Retries of one call (429, lock_timeout, Stripe-Should-Retry, connection errors, 5xx),
# with exponential backoff and jitter from STRIPE_RETRY_BASE_DELAY up to _MAX_DELAY seconds.
STRIPE_MAX_RETRIES = env.int("STRIPE_MAX_RETRIES", default=6)
STRIPE_RETRY_BASE_DELAY = env.float("STRIPE_RETRY_BASE_DELAY", default=0.25)
STRIPE_RETRY_MAX_DELAY = env.float("STRIPE_RETRY_MAX_DELAY", default=8.0)
STRIPE_HTTP_TIMEOUT = env.float("STRIPE_HTTP_TIMEOUT", default=30)
# Cursor chains the account import lists each phase with at once (requests in flight;
# stripe_integration/importing/listing.py). The rate limiter above still bounds the rate.
STRIPE_IMPORT_CONCURRENCY = env.int("STRIPE_IMPORT_CONCURRENCY", default=8)
# A push not heard from for this long is taken over by the next attempt (a dead worker).
STRIPE_PUSH_LEASE_SECONDS = env.int("STRIPE_PUSH_LEASE_SECONDS", default=300)

# --- Security (production) -----------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    # Load balancers probe the health endpoints over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Sessions expire: after SESSION_COOKIE_AGE seconds (8 hours: a working day) of inactivity,
# since every request renews the cookie; and when the browser closes unless the variable
# says otherwise. Staff sign in again.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES (answer 429). Attempts
# are counted in the database, so every web machine sees the same count. Behind a proxy
# the client address comes from X-Forwarded-For (AXES_IPWARE_PROXY_COUNT proxies).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0 if DEBUG else 1)
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
# The login form's own page says why (not Django's bare 403/429 text).
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Content-Security-Policy (django-csp): scripts, fonts and images from this site only (front-
# end assets are served from /static/, never a CDN); inline <style> and style attributes are
# allowed because the templates and Django's admin use them; forms post to this site, or to
# Stripe Connect (its OAuth page). Stripe's hosted invoice pages are plain links: not framed.
_CONNECT_ORIGIN = "/".join(STRIPE_CONNECT_BASE.split("/")[:3])
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, _CONNECT_ORIGIN],
    },
}

# Logs (config/logs.py): JSON lines with request id, business and Stripe request ids in
# production, a readable console line in the embedded default; secrets, card numbers and
# e-mails redacted. Celery keeps this configuration instead of installing its own.
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_REDIRECT_STDOUTS = False  # else each write of a traceback becomes a log line
