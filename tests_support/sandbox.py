"""Fixtures that put the app in front of the Stripe sandbox over real HTTP.

`stripe_sandbox_server` (session): one sandbox in a background thread on a free port.
`stripe_env` (function): points settings at it with a platform key of its own — each
distinct `sk_test_` key is its own platform account in the sandbox, so tests never see
each other's objects — and offers the sandbox's control plane (`/_sandbox/*`).
"""
from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass

import pytest


# base_url -> the in-process sandbox server, for helpers that play what Stripe does on its
# own, later, with no API call to trigger it (tests_support/stripe_async.py).
SERVERS: dict = {}


@pytest.fixture(scope="session")
def stripe_sandbox_server():
    from stripe_sandbox.server import start_in_thread

    server, base_url = start_in_thread(retry_base_ms=20)
    SERVERS[base_url] = server
    yield base_url
    SERVERS.pop(base_url, None)
    server.stop()


@dataclass
class SandboxControl:
    base_url: str
    secret_key: str
    client_id: str

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def _all_requests(self) -> list[dict]:
        rows = self._call("GET", "/_sandbox/requests")
        return rows["data"] if isinstance(rows, dict) else rows

    def mark(self):
        self._mark = len(self._all_requests())

    def requests(self, *, method: str | None = None, path: str | None = None) -> list[dict]:
        """API requests served since this test began (tests run one at a time)."""
        rows = self._all_requests()[getattr(self, "_mark", 0):]
        if method:
            rows = [r for r in rows if r["method"] == method]
        if path:
            rows = [r for r in rows if r["path"] == path]
        return rows

    def fault(self, match: str, kind: str = "500", rate: float = 1.0, **extra):
        return self._call("POST", "/_sandbox/faults", {"match": match, "kind": kind, "rate": rate, **extra})

    def clear_faults(self):
        return self._call("DELETE", "/_sandbox/faults")


@pytest.fixture
def stripe_env(stripe_sandbox_server, settings):
    key = "sk_test_" + secrets.token_hex(12)
    settings.STRIPE_SECRET_KEY = key
    settings.STRIPE_CONNECT_CLIENT_ID = "ca_" + secrets.token_hex(8)
    settings.STRIPE_API_BASE = stripe_sandbox_server
    settings.STRIPE_CONNECT_BASE = stripe_sandbox_server
    control = SandboxControl(stripe_sandbox_server, key, settings.STRIPE_CONNECT_CLIENT_ID)
    control.mark()
    yield control
    control.clear_faults()
    # One sandbox serves the whole session: time moved by this test must not make a later
    # test's absolute due dates (today + 30 days) fall in Stripe's past.
    control._call("POST", "/_sandbox/clock/reset")
