"""The request pipeline, independent of the HTTP server.

For each API request: fault injection (as if at Stripe's edge), authentication,
Stripe-Account scoping, the rate limit, the idempotency key, parameter validation
against the SDK's types, the handler (under the store lock, so requests are
serializable and a key can never create two objects), `expand[]`, event
publication, and the request log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import json
import pkgutil
import sys
import threading
import traceback

from . import control, forms, scheduler
from .accounts import API_VERSION, authenticate, resolve_account
from .core import Ctx, Response, expand, match, new_id
from .spec_shapes import conform
from .errors import OAuthError, StripeError
from .events import publish
from .faults import EDGE_KINDS, Faults, RateLimiter
from .schema import validate
from .store import Clock, Store
from .webhooks import WebhookDispatcher

IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # "keys are eligible to be removed after 24 hours"
_REQUEST_LOG_CAP = 100_000


def load_resources() -> None:
    """Import every module of stripe_sandbox.resources: each registers its routes."""
    from . import oauth, resources  # noqa: F401 - oauth registers routes too

    for mod in pkgutil.iter_modules(resources.__path__):
        importlib.import_module(f"{resources.__name__}.{mod.name}")


class Request:
    def __init__(self, method: str, path: str, query: str = "", headers=None, body: bytes = b""):
        self.method = method.upper()
        self.path = path
        self.query = query
        self.headers = headers if headers is not None else {}
        self.body = body

    def header(self, name: str) -> str | None:
        get = self.headers.get
        return get(name) or get(name.lower())


class Sandbox:
    def __init__(self, *, state_file: str | None = None, retry_base_ms=None, max_attempts=None,
                 webhook_timeout=None, webhook_workers: int = 4, autosave_interval: float = 1.0):
        load_resources()
        self.store = Store()
        self.clock = Clock(self.store)
        self.faults = Faults()
        self.rate_limiter = RateLimiter()
        self.webhooks = WebhookDispatcher(
            self, retry_base_ms=retry_base_ms, max_attempts=max_attempts,
            timeout=webhook_timeout, workers=webhook_workers,
        )
        self.state_file = state_file
        self.autosave_interval = autosave_interval
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None
        self._log_offset = 0
        if state_file:
            self.store.load(state_file)

    # ----------------------------------------------------------------- running

    def start(self) -> None:
        self.webhooks.start()
        if self.state_file:
            self._stop.clear()
            self._saver = threading.Thread(target=self._autosave, name="stripe-sandbox-save", daemon=True)
            self._saver.start()

    def stop(self) -> None:
        self._stop.set()
        self.webhooks.stop()
        if self._saver:
            self._saver.join(timeout=2)
        self.save()

    def save(self) -> None:
        if self.state_file:
            self.store.save(self.state_file)

    def _autosave(self) -> None:
        # Saving a second after changes bounds what a kill -9 can lose.
        while not self._stop.wait(self.autosave_interval):
            if self.store.dirty:
                self.save()

    def reset(self) -> None:
        self.store.clear()
        self._log_offset = 0
        self.faults.clear()
        self.rate_limiter.configure(0)
        self.webhooks.reset_config()

    # ---------------------------------------------------------------- requests

    def handle(self, req: Request) -> Response:
        if req.path == "/_sandbox" or req.path.startswith("/_sandbox/"):
            return control.dispatch(self, req)
        # What Stripe would have done by now happens before this request is served.
        scheduler.run_due(self)
        request_id = new_id("req")
        info = {"account": None, "idempotency_key": req.header("Idempotency-Key")}
        route, names = match(req.method, req.path)
        fault = self.faults.pick(f"{req.method} {req.path}")
        try:
            if fault is not None and fault.kind in EDGE_KINDS:
                # Refused at the edge: nothing runs, but the log still says for whom.
                known = self.store.api_keys.get(_secret_key(req) or "")
                info["account"] = req.header("Stripe-Account") or (known or {}).get("account")
                error = fault.error()
                resp = (Response.json(error.body(request_id), error.status) if isinstance(error, OAuthError)
                        else _error_response(error, request_id))
            else:
                resp = self._serve(req, route, names, request_id, info)
        except StripeError as exc:
            resp = _error_response(exc, request_id, oauth=route is not None and route.auth == "oauth")
        except OAuthError as exc:
            resp = Response.json(exc.body(request_id), exc.status)
        except Exception:  # a bug in a handler: answer like Stripe, keep the trace
            traceback.print_exc(file=sys.stderr)
            resp = _error_response(
                StripeError(500, "An unknown error occurred while processing your request.", type="api_error"),
                request_id,
            )
        resp.headers["Request-Id"] = request_id
        if route is None or route.auth != "public":
            resp.headers["Stripe-Version"] = req.header("Stripe-Version") or API_VERSION
        if req.method == "POST" and info["idempotency_key"]:
            resp.headers["Idempotency-Key"] = info["idempotency_key"]
        if fault is not None and fault.kind == "timeout":
            resp.delay = fault.delay_ms / 1000
        elif fault is not None and fault.kind == "drop":
            resp.drop = True
        self._log(req, request_id, info, resp, fault)
        return resp

    def _serve(self, req: Request, route, names: dict, request_id: str, info: dict) -> Response:
        if route is None:
            raise StripeError(
                404,
                f"Unrecognized request URL ({req.method}: {req.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        raw = forms.decode(req.query) if req.query else {}
        if req.body and req.method != "GET":
            raw.update(forms.decode(req.body))
        api_key = _secret_key(req)
        store = self.store
        ctx = Ctx(self, api_key=api_key, request_id=request_id, method=req.method, path=req.path,
                  headers=req.headers)
        if route.auth != "api":
            # Hosted pages and OAuth endpoints authenticate (or not) themselves.
            with store.lock:
                try:
                    result = route.handler(ctx, raw, **names)
                except BaseException:
                    ctx.rollback()
                    raise
                publish(self, ctx)
                info["account"] = ctx.account
            return result if isinstance(result, Response) else Response.json(result)

        with store.lock:
            key_rec = authenticate(store, self.clock.now(), api_key)
            account = resolve_account(store, key_rec["account"], api_key, req.header("Stripe-Account"))
        info["account"] = account
        self.rate_limiter.check(api_key)
        ctx.account, ctx.platform = account, key_rec["platform"] or key_rec["account"]
        idem = info["idempotency_key"] if req.method == "POST" else None
        ctx.idempotency_key = idem

        with store.lock:
            slot = None
            if idem:
                slot, replay = self._idempotent(api_key, account, idem, req, raw)
                if replay is not None:
                    return replay
            params = validate(route.params, raw) if route.params is not None else raw
            try:
                result = route.handler(ctx, params, **names)
                if isinstance(result, Response):
                    resp = result
                else:
                    paths = params.get("expand") or []
                    if isinstance(paths, dict):
                        paths = list(paths.values())
                    resp = Response.json(conform(expand(ctx, result, paths), paths))
            except StripeError as exc:
                # A request that fails changes nothing and emits nothing, but its
                # answer is kept under its idempotency key like any other result.
                ctx.rollback()
                resp = _error_response(exc, request_id)
            except Exception:
                ctx.rollback()
                raise
            publish(self, ctx)
            if slot is not None:
                if len(store.idempotency) % 1024 == 1023:
                    self._forget_expired_keys()
                store.idempotency[slot] = {
                    "method": req.method,
                    "path": req.path,
                    "digest": _digest(raw),
                    "status": resp.status,
                    "body": resp.body.decode(),
                    "content_type": resp.headers.get("Content-Type", "application/json"),
                    "request_id": request_id,
                    "created": self.clock.now(),
                }
            if req.method != "GET":
                store.dirty = True
        return resp

    def _forget_expired_keys(self) -> None:
        oldest = self.clock.now() - IDEMPOTENCY_TTL_SECONDS
        keys = self.store.idempotency
        for slot in [s for s, rec in keys.items() if rec["created"] < oldest]:
            del keys[slot]

    def _idempotent(self, api_key, account, key, req, raw):
        """(slot, replayed response or None). Keys are scoped per secret key and
        account, live 24 hours, and bind to one endpoint and one set of params
        (docs.stripe.com/api/idempotent_requests)."""
        store = self.store
        slot = f"{api_key}|{account}|{key}"
        rec = store.idempotency.get(slot)
        if rec is not None and rec["created"] + IDEMPOTENCY_TTL_SECONDS < self.clock.now():
            del store.idempotency[slot]
            rec = None
        if rec is None:
            return slot, None
        if (rec["method"], rec["path"]) != (req.method, req.path):
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{rec['method']} {rec['path']}' vs '{req.method} {req.path}'). "
                f"Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if rec["digest"] != _digest(raw):
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were "
                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                "different request.",
                type="idempotency_error",
            )
        headers = {
            "Content-Type": rec["content_type"],
            "Idempotent-Replayed": "true",
            "Original-Request": rec["request_id"],
        }
        return slot, Response(rec["status"], rec["body"].encode(), headers)

    def _log(self, req: Request, request_id: str, info: dict, resp: Response, fault) -> None:
        entry = {
            "time": self.clock.now(),
            "request_id": request_id,
            "method": req.method,
            "path": req.path,
            "account": info["account"],
            "idempotency_key": info["idempotency_key"],
            "status": resp.status,
            "replayed": resp.headers.get("Idempotent-Replayed") == "true",
            "fault": fault.kind if fault is not None else None,
        }
        with self.store.lock:
            log = self.store.requests
            log.append(entry)
            if len(log) > _REQUEST_LOG_CAP:
                drop = len(log) // 2
                del log[:drop]
                self._log_offset += drop

    def requests_since(self, since: int) -> tuple[list[dict], int]:
        with self.store.lock:
            start = max(since - self._log_offset, 0)
            entries = self.store.requests[start:]
            first = self._log_offset + start
            return [dict(e, index=first + i) for i, e in enumerate(entries)], self._log_offset + len(self.store.requests)


def _secret_key(req: Request) -> str | None:
    """Bearer auth, or basic auth with the key as user name, as Stripe accepts."""
    auth = req.header("Authorization") or ""
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def _digest(raw: dict) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


def _error_response(exc: StripeError, request_id: str, *, oauth: bool = False) -> Response:
    if oauth:
        # connect.stripe.com answers in OAuth's shape, which the SDK tells apart by
        # `error` being a string.
        body = {"error": "invalid_request", "error_description": exc.message}
        return Response.json(body, exc.status)
    return Response.json(exc.body(request_id), exc.status, exc.headers)
