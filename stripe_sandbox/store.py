"""In-memory state, guarded by one lock, optionally saved as JSON.

Everything here is plain JSON data so that `--state FILE` can save and reload it
as is. Objects live in `objects` by id (ids are globally unique, as on Stripe);
`owner` says which account (`acct_...`) an object belongs to and `index` keeps
each account's ids per object type in creation order, which is what list
endpoints page through (newest first).

Route handlers run while the framework holds `lock`, so they read and write
freely; anything else (webhook workers, the control plane) takes the lock itself.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time

# Parts of the state that are data (saved with --state), as opposed to the
# sandbox's configuration (faults, chaos, rate limit), which a restart clears.
_PERSISTED = (
    "objects",
    "owner",
    "index",
    "accounts",
    "api_keys",
    "client_ids",
    "oauth_codes",
    "refresh_tokens",
    "secrets",
    "idempotency",
    "delivered",
    "deliveries",
    "delivery_jobs",
    "clock_offset",
)


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        # Webhook workers wait on this for jobs that become due.
        self.jobs_changed = threading.Condition(self.lock)
        self.generation = 0
        self.dirty = False
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.generation += 1
            self.objects: dict[str, dict] = {}
            self.owner: dict[str, str] = {}
            self.index: dict[str, list[str]] = {}
            # acct id -> {"platform": acct|None, "email", "client_id", "revoked": bool}
            self.accounts: dict[str, dict] = {}
            # secret key -> {"account": acct, "platform": acct|None}
            self.api_keys: dict[str, dict] = {}
            self.client_ids: dict[str, str] = {}
            self.oauth_codes: dict[str, dict] = {}
            self.refresh_tokens: dict[str, dict] = {}
            # Webhook endpoint id -> signing secret (Stripe shows it only at creation).
            self.secrets: dict[str, str] = {}
            self.idempotency: dict[str, dict] = {}
            # "evt|we" pairs that got a 2xx, so duplicates don't count twice.
            self.delivered: dict[str, bool] = {}
            # Delivery attempts, oldest first (webhooks.py caps the list).
            self.deliveries: list[dict] = []
            # [due (wall time), seq, job] for webhook workers.
            self.delivery_jobs: list[list] = []
            self.requests: list[dict] = []
            self.clock_offset = 0.0
            self.dirty = True
            self.jobs_changed.notify_all()

    # ------------------------------------------------------------------ objects

    def insert(self, obj: dict, account: str) -> dict:
        if self._live(account):
            stamp_livemode(obj)
        oid = obj["id"]
        self.objects[oid] = obj
        self.owner[oid] = account
        self.index.setdefault(f"{account}/{obj['object']}", []).append(oid)
        self.dirty = True
        return obj

    def put(self, obj: dict) -> dict:
        """Replace a stored object (same id, same owner)."""
        if self._live(self.owner.get(obj["id"])):
            stamp_livemode(obj)
        self.objects[obj["id"]] = obj
        self.dirty = True
        return obj

    def _live(self, account: str | None) -> bool:
        meta = self.accounts.get(account or "")
        return bool(meta and meta.get("livemode"))

    def get(self, oid: str, account: str) -> dict | None:
        """The object if it belongs to `account`: Connect scoping lives here."""
        if self.owner.get(oid) != account:
            return None
        return self.objects.get(oid)

    def ids(self, account: str, object_name: str) -> list[str]:
        """Ids in creation order (oldest first); callers reverse for Stripe's order."""
        return self.index.get(f"{account}/{object_name}", [])

    # ------------------------------------------------------------- persistence

    def snapshot(self) -> str:
        with self.lock:
            text = json.dumps({name: getattr(self, name) for name in _PERSISTED})
            self.dirty = False
        return text

    def save(self, path: str) -> None:
        text = self.snapshot()
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".stripe_sandbox.", dir=directory)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def load(self, path: str) -> bool:
        if not os.path.exists(path):
            return False
        with open(path) as fh:
            data = json.load(fh)
        with self.lock:
            self.clear()
            for name in _PERSISTED:
                if name in data:
                    setattr(self, name, data[name])
            self.dirty = False
            self.jobs_changed.notify_all()
        return True


class Clock:
    """Sandbox time: wall time plus an offset the control plane can advance, so
    tests can expire OAuth codes, idempotency keys and events without sleeping."""

    def __init__(self, store: Store):
        self.store = store

    def now(self) -> int:
        return int(time.time() + self.store.clock_offset)

    def advance(self, seconds: float) -> int:
        with self.store.lock:
            self.store.clock_offset += seconds
            self.store.dirty = True
        return self.now()


def stamp_livemode(obj) -> None:
    """Objects of a live-mode account say so, as on Stripe: every `livemode` in the object
    and in the objects it embeds (lines, charges, event data) is true."""
    if isinstance(obj, dict):
        if "livemode" in obj:
            obj["livemode"] = True
        for value in obj.values():
            if isinstance(value, (dict, list)):
                stamp_livemode(value)
    elif isinstance(obj, list):
        for value in obj:
            if isinstance(value, (dict, list)):
                stamp_livemode(value)
