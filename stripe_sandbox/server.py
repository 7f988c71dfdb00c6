"""HTTP/1.1 server around the Sandbox pipeline (standard library only).

Keep-alive matters: stripe-python reuses connections (requests sessions), and a
new TCP connection per call would halve throughput. Each response is written in
one piece with an exact Content-Length.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .app import Request, Sandbox

_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Headers(dict):
    """Request headers, looked up case-insensitively (stored lower-cased)."""

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __contains__(self, name):
        return super().__contains__(name.lower())

    def get(self, name, default=None):
        return super().get(name.lower(), default)


_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Handler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 with a lean request parser.

    The stdlib handler parses headers with the email package, which costs more
    than serving a Stripe request; a loop over header lines does the same job for
    the simple requests HTTP clients send here."""

    protocol_version = "HTTP/1.1"
    server_version = "stripe_sandbox"
    sys_version = ""
    disable_nagle_algorithm = True

    def handle_one_request(self) -> None:
        try:
            line = self.rfile.readline(_MAX_LINE + 1)
            if not line:
                self.close_connection = True
                return
            parts = line.decode("latin-1").split()
            if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                self._plain(400, "Bad request line")
                return
            method, target, version = parts
            headers = Headers()
            while True:
                raw = self.rfile.readline(_MAX_LINE + 1)
                if raw in (b"\r\n", b"\n", b""):
                    break
                if len(raw) > _MAX_LINE or len(headers) >= _MAX_HEADERS:
                    self._plain(431, "Request header fields too large")
                    return
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            connection = headers.get("connection", "").lower()
            self.close_connection = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._plain(411, "Length required")
                return
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            length = int(headers.get("content-length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            self.command, self.path, self.request_version, self.headers = method, target, version, headers
            self._dispatch(method, target, headers, body)
            self.wfile.flush()
        except (TimeoutError, ConnectionError, ValueError):
            self.close_connection = True

    def _plain(self, status: int, message: str) -> None:
        self.close_connection = True
        self._write(status, {"Content-Type": "text/plain"}, message.encode())

    def _dispatch(self, method: str, target: str, headers: Headers, body: bytes) -> None:
        parts = urlsplit(target)
        resp = self.server.sandbox.handle(Request(method, parts.path, parts.query, headers, body))
        if self.server.verbose:
            self.log_message('"%s %s" %s', method, target, resp.status)
        if resp.delay:
            time.sleep(resp.delay)
        if resp.drop:
            # Committed, but the client never hears back: like a timeout after
            # Stripe performed the request.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(resp.status, resp.headers, resp.body)

    def _write(self, status: int, headers: dict, body: bytes) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
            "Cache-Control: no-cache, no-store",
            "Access-Control-Allow-Origin: *",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        try:
            # One write: headers and body in one segment.
            self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout faults)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many client threads open connections at once (benchmarks, concurrency tests).
    request_queue_size = 128

    def __init__(self, address, sandbox: Sandbox, verbose: bool = False):
        super().__init__(address, _Handler)
        self.sandbox = sandbox
        self.verbose = verbose
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "SandboxServer":
        """Serve from a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.1,), name="stripe-sandbox-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, stop webhook workers, save state (when --state)."""
        self.shutdown()
        self.server_close()
        self.sandbox.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_server(host: str = "127.0.0.1", port: int = 0, *, sandbox: Sandbox | None = None,
                allow_remote: bool = False, verbose: bool = False, **sandbox_options) -> SandboxServer:
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to listen on non-loopback host {host!r} without allow_remote")
    sandbox = sandbox or Sandbox(**sandbox_options)
    server = SandboxServer((host, port), sandbox, verbose=verbose)
    sandbox.start()
    return server


def start_in_thread(host: str = "127.0.0.1", port: int = 0, **options) -> tuple[SandboxServer, str]:
    """Start a sandbox serving in a background thread: (server, base_url).
    `server.stop()` ends it; `server.sandbox` is the Sandbox (for reset, clock...).
    Options: state_file, retry_base_ms, max_attempts, webhook_timeout, verbose."""
    server = make_server(host, port, **options).start()
    return server, server.base_url
