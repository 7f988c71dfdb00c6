"""Structured logs (structlog): one JSON object per line in production (LOG_FORMAT=json), a
readable line in the embedded default (LOG_FORMAT=console). Every line of a request carries
its request id (X-Request-ID, echoed back) and the business; Celery lines carry the task.

Django's, Celery's, gunicorn's and the app's stdlib loggers all go through the same
processors, and `redact` runs last before rendering: Stripe keys and tokens, webhook
signing secrets, card numbers and e-mail addresses never reach a log line.
"""
from __future__ import annotations

import re
import time
import uuid

import structlog

# Secrets by shape: Stripe secret/restricted keys (also the OAuth access tokens), refresh
# tokens, OAuth codes, webhook signing secrets, payment/setup intent client secrets.
# Fernet keys and the like are caught by field name below.
_SECRET_RE = re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]+|\b(?:rt|ac)_[A-Za-z0-9]{12,}|\bwhsec_[A-Za-z0-9_]+"
                        r"|\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+")
# Also URL-encoded (%40): form bodies and query strings carry them that way.
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# 13-19 digits, optionally grouped by spaces or dashes; redacted when the Luhn check passes.
_CARD_RE = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
# A field with one of these names is dropped whatever its value looks like.
_SECRET_FIELDS = re.compile(r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|card_?number|cvc|"
                            r"^email$|signature|encryption", re.I)
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return "[card]" if _luhn(digits) else match.group(0)


def redact_text(text: str) -> str:
    text = _SECRET_RE.sub("[secret]", text)
    text = _EMAIL_RE.sub("[email]", text)
    return _CARD_RE.sub(_card, text)


def _redact_value(value):
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: "[redacted]" if _SECRET_FIELDS.search(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_redact_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


def redact(logger, method_name, event_dict):
    """structlog processor: the last before rendering (see module docstring)."""
    return {k: "[redacted]" if _SECRET_FIELDS.search(k) else _redact_value(v) for k, v in event_dict.items()}


_PRE_CHAIN = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.stdlib.ExtraAdder(),
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(fmt: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The logging.Formatter for every handler (also built by `logging_config`)."""
    renderer = (structlog.processors.JSONRenderer() if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


def logging_config(*, fmt: str, level: str) -> dict:
    """settings.LOGGING (dictConfig), also used by gunicorn (config/gunicorn.py)."""
    if fmt not in ("json", "console"):
        raise ValueError(f"LOG_FORMAT must be json or console, not {fmt!r}")
    structlog.configure(
        processors=[*_PRE_CHAIN, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter, "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # stripe-python logs every request URL at INFO (query strings carry e-mails):
            # the gateway logs each call itself, with its Stripe request id.
            "stripe": {"level": "WARNING"},
            # One line per request comes from RequestLogContextMiddleware.
            "django.server": {"level": "WARNING"},
            "axes.apps": {"level": "WARNING"},  # its version banner at every start
            "gunicorn.access": {"level": "WARNING"},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
        },
    }


class RequestLogContextMiddleware:
    """Binds a request id (the caller's X-Request-ID when well formed, else a new one) to
    every log line of the request, echoes it in the answer, and logs one line per request."""

    log = structlog.get_logger("config.request")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        request.request_id = request_id
        start = time.monotonic()
        try:
            response = self.get_response(request)
        except Exception:
            self.log.exception("request failed", method=request.method, path=request.path)
            structlog.contextvars.clear_contextvars()
            raise
        response[REQUEST_ID_HEADER] = request_id
        self.log.info("request", method=request.method, path=request.path, status=response.status_code,
                      duration_ms=round((time.monotonic() - start) * 1000, 1))
        structlog.contextvars.clear_contextvars()
        return response


class RequestBusinessLogMiddleware:
    """After authentication: binds the signed-in user's id and current business (its slug)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from crm.tenancy import get_business  # apps are loaded by the time a request comes

            business = get_business(request)
            structlog.contextvars.bind_contextvars(user_id=user.pk, business=business.slug if business else None)
        return self.get_response(request)


# Task id -> the context tokens to restore after it: an eager task (run inside a request)
# gives the request back its own context; a worker's task leaves an empty one.
_task_tokens: dict = {}


def bind_celery_task(task_id=None, task=None, **_):
    _task_tokens[task_id] = structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


def unbind_celery_task(task_id=None, **_):
    tokens = _task_tokens.pop(task_id, None)
    if tokens:
        structlog.contextvars.reset_contextvars(**tokens)


def attach_to_celery() -> None:
    """Task lines carry the task's id and name (config/celery.py calls this)."""
    from celery import signals

    signals.task_prerun.connect(bind_celery_task, weak=False)
    signals.task_postrun.connect(unbind_celery_task, weak=False)
