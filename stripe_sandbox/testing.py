"""Pytest fixtures and helpers for code that talks to stripe_sandbox.

Import the fixtures into a conftest.py:

    from stripe_sandbox.testing import sandbox, sandbox_server, webhook_receiver  # noqa: F401

* `sandbox_server` (session): one sandbox serving on a free loopback port, with
  fast webhook retries (20 ms base) so retry tests take milliseconds.
* `sandbox` (function): the same server, reset to empty before the test; a
  `SandboxHandle` with `base_url`, `client()` (a StripeClient with a fresh
  platform key), `control()` and shortcuts for the control plane.
* `webhook_receiver` (function): a local HTTP endpoint that records what the
  sandbox delivers and answers with programmable status codes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from .server import start_in_thread

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# Loopback only: never through an environment proxy; redirects are for tests to see.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http_request(method: str, url: str, *, body: bytes | str | None = None,
                 headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """A plain HTTP request, for what stripe-python would not send (raw forms,
    HTML pages, redirects, the control plane): (status, headers, body)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def new_secret_key() -> str:
    """A fresh test key: the sandbox makes it a new, empty platform account."""
    return "sk_test_" + secrets.token_hex(12)


class SandboxHandle:
    def __init__(self, server):
        self.server = server
        self.sandbox = server.sandbox
        self.base_url = server.base_url

    def client(self, api_key: str | None = None, **options) -> stripe.StripeClient:
        """A StripeClient for the sandbox (a new platform key unless given)."""
        base = self.base_url
        options.setdefault("base_addresses", {"api": base, "connect": base, "files": base})
        return stripe.StripeClient(api_key or new_secret_key(), **options)

    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        status, _, answer = http_request(
            method, self.base_url + "/_sandbox" + path,
            body=json.dumps(body or {}) if method != "GET" else None,
            headers={"Content-Type": "application/json"},
        )
        if status != 200:
            raise AssertionError(f"control {method} {path}: {status} {answer!r}")
        return json.loads(answer or b"{}")

    # Shortcuts for the control plane.
    def requests(self, since: int = 0) -> list[dict]:
        return self.control("GET", f"/requests?since={since}")["data"]

    def deliveries(self, **filters) -> list[dict]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return self.control("GET", "/webhooks/deliveries" + (f"?{query}" if query else ""))["data"]

    def drain(self, timeout: float = 10) -> None:
        assert self.control("POST", "/webhooks/drain", {"timeout": timeout})["drained"], "deliveries still pending"

    def fault(self, match: str, kind: str, **options) -> dict:
        return self.control("POST", "/faults", {"match": match, "kind": kind, **options})

    def advance_clock(self, seconds: float) -> int:
        return self.control("POST", "/clock", {"advance_seconds": seconds})["now"]

    def connect_account(self, secret_key: str, email: str | None = None, **extra) -> str:
        return self.control("POST", "/accounts", {"secret_key": secret_key, "email": email, **extra})["id"]

    def oauth_code(self, secret_key: str, email: str | None = None, **extra) -> str:
        return self.control("POST", "/oauth/code", {"secret_key": secret_key, "email": email, **extra})["code"]


@pytest.fixture(scope="session")
def sandbox_server():
    server, _ = start_in_thread(retry_base_ms=20, max_attempts=4, webhook_timeout=2)
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server) -> SandboxHandle:
    sandbox_server.sandbox.reset()
    return SandboxHandle(sandbox_server)


class WebhookReceiver:
    """Records deliveries; answers each with the next queued status (default 200)."""

    def __init__(self):
        self.received: list[dict] = []
        self._statuses: list[int] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.received.append({
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body.decode(),
                        "status": status,
                    })
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def respond_with(self, *statuses: int) -> None:
        with self._lock:
            self._statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")
                self._lock.wait(left)
            return list(self.received)

    def events(self) -> list[dict]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
