"""gunicorn settings for `bin/serve web`, from the environment: PORT/BIND, WEB_CONCURRENCY
worker processes, GUNICORN_THREADS per process, GUNICORN_TIMEOUT. gunicorn's own lines
(boot, worker deaths) use the app's structured logs (config/logs.py); the request lines
come from the app's middleware, so gunicorn's access log stays off."""
import os

import environ

env = environ.Env()
bind = env.str("BIND", default="0.0.0.0:%s" % env.str("PORT", default="8000"))
workers = env.int("WEB_CONCURRENCY", default=2 * (os.cpu_count() or 1) + 1)
threads = env.int("GUNICORN_THREADS", default=4)
worker_class = "gthread"
timeout = env.int("GUNICORN_TIMEOUT", default=60)
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (with jitter): bounds any slow leak.
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=2000)
max_requests_jitter = max_requests // 10
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", default="127.0.0.1")
accesslog = None


def _logconfig() -> dict:
    from config.logs import logging_config

    debug = env.bool("DJANGO_DEBUG", default=True)
    return logging_config(fmt=env.str("LOG_FORMAT", default="console" if debug else "json"),
                          level=env.str("LOG_LEVEL", default="INFO"))


logconfig_dict = _logconfig()
