"""The framework resource modules build on: routes, the request context, ids,
lists, expansion, metadata and updates. See README.md ("Adding a resource").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .errors import StripeError, invalid_request, resource_missing
from .schema import deleted_stub, expandable_fields, shape

# ---------------------------------------------------------------------- ids

_ALPHABET = string.ascii_letters + string.digits
# Real id lengths differ per prefix; these follow Stripe's published examples.
_ID_LENGTHS = {"cus": 14, "prod": 14, "acct": 16, "req": 14, "txi": 24}
# Ids need to be unique, not secret, and cheap (a create makes three: object,
# event, request): random bytes mapped onto base62 with one translate().
_BYTE_TO_BASE62 = bytes((_ALPHABET * 5)[:256], "ascii")


def new_id(prefix: str, length: int | None = None) -> str:
    n = length or _ID_LENGTHS.get(prefix, 24)
    return prefix + "_" + os.urandom(n).translate(_BYTE_TO_BASE62).decode()


def random_token(n: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


# ------------------------------------------------------------------- routes

_encode_json = json.JSONEncoder(check_circular=False).encode


@dataclass
class Response:
    """A non-JSON answer (HTML pages, redirects); handlers may return one."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Set by fault injection: sleep before answering / close without answering.
    delay: float = 0.0
    drop: bool = False

    @classmethod
    def html(cls, text: str, status: int = 200) -> "Response":
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str) -> "Response":
        return cls(302, b"", {"Location": location})

    @classmethod
    def json(cls, data, status: int = 200, headers: dict | None = None) -> "Response":
        # json.dumps's output (its C encoder only runs without `indent`), without its
        # check for cycles: answers are trees of JSON data (a cycle would still fail,
        # as a RecursionError, answered as a 500 like any handler error).
        body = _encode_json(data).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})


def error_response(ctx, exc: StripeError) -> Response:
    """Answer an error without raising it: what a handler returns when part of
    its work must stand (a raised StripeError rolls the request back)."""
    return Response.json(exc.body(ctx.request_id), exc.status, exc.headers)


@dataclass
class Route:
    method: str
    pattern: str
    handler: Callable
    params: type | None
    auth: str
    regex: re.Pattern | None


_static: dict[tuple[str, str], Route] = {}
# Patterns with {names}, by method and number of path segments.
_dynamic: dict[tuple[str, int], list[Route]] = {}

AUTH_MODES = ("api", "public", "oauth")


def route(method: str, pattern: str, *, params: type | None = None, auth: str = "api"):
    """Register a handler for `METHOD /path/{name}`.

    `params` is the SDK's TypedDict (`stripe.params.CustomerCreateParams`); the
    handler gets the validated, coerced params. Without it the handler gets the
    decoded form as is. `auth`: "api" (secret key, Stripe-Account, idempotency),
    "public" (hosted pages, no key) or "oauth" (connect.stripe.com conventions).
    The handler is `fn(ctx, params, **path_names)` and returns a dict (a Stripe
    object, answered as JSON with `expand[]` applied) or a `Response`.
    """
    if auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {AUTH_MODES}")

    def register(fn):
        method_u = method.upper()
        if "{" in pattern:
            regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
            bucket = _dynamic.setdefault((method_u, pattern.count("/")), [])
            taken = [r for r in bucket if r.pattern == pattern]
            bucket.append(Route(method_u, pattern, fn, params, auth, regex))
        else:
            taken = [_static[(method_u, pattern)]] if (method_u, pattern) in _static else []
            _static[(method_u, pattern)] = Route(method_u, pattern, fn, params, auth, None)
        if any(r.handler.__qualname__ != fn.__qualname__ or r.handler.__module__ != fn.__module__ for r in taken):
            raise ValueError(f"{method_u} {pattern} is already routed to {taken[0].handler.__module__}")
        return fn

    return register


def match(method: str, path: str) -> tuple[Route | None, dict]:
    r = _static.get((method, path))
    if r is not None:
        return r, {}
    for r in _dynamic.get((method, path.count("/")), ()):
        m = r.regex.match(path)
        if m:
            return r, m.groupdict()
    return None, {}


# ------------------------------------------------------------------ context


class Ctx:
    """What a handler knows about its request, and its way into the store.

    `account` is the account the request acts for: the Stripe-Account header's
    connected account, else the key's own account. Every object read or written
    through the context is scoped to it.
    """

    def __init__(self, sandbox, *, account=None, platform=None, api_key=None, request_id=None,
                 idempotency_key=None, method="GET", path="/", headers=None):
        self.sandbox = sandbox
        self.store = sandbox.store
        self.account = account
        self.platform = platform
        self.api_key = api_key
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        self.method = method
        self.path = path
        self.headers = headers or {}
        self.pending_events: list[tuple[str, dict]] = []
        self._journal: dict[str, dict | None] = {}

    # -- time and ids
    def now(self) -> int:
        return self.sandbox.clock.now()

    def new_id(self, prefix: str, length: int | None = None) -> str:
        return new_id(prefix, length)

    # -- objects, scoped to ctx.account
    # Writes are journaled so that a request that fails half-way (a StripeError
    # after some objects were written) leaves the store as it found it. The rule
    # that makes this work: change only objects obtained from `get()` (or made in
    # this request), never those from `find()` or `objects()`, which are the
    # stored objects themselves and read-only.

    def _journal_before_write(self, oid: str) -> None:
        if oid not in self._journal:
            old = self.store.objects.get(oid)
            self._journal[oid] = copy_json(old) if old is not None else None

    def insert(self, obj: dict) -> dict:
        """Store a new object in this account."""
        if self.account is None:
            raise RuntimeError("an object needs an account: set ctx.account on public routes")
        self._journal.setdefault(obj["id"], None)
        return self.store.insert(obj, self.account)

    def save(self, obj: dict) -> dict:
        """Store a changed object (one taken with `get()`)."""
        self._journal_before_write(obj["id"])
        return self.store.put(obj)

    def find(self, oid, object_name: str | None = None) -> dict | None:
        """The stored object in this account, or None; read-only."""
        if not isinstance(oid, str):
            return None
        obj = self.store.get(oid, self.account)
        if obj is None or (object_name and obj.get("object") != object_name):
            return None
        return obj

    def get(self, object_name: str, oid, *, param: str | None = "id", allow_deleted=False) -> dict:
        """The object, to read or change, or Stripe's resource_missing: 404 for an
        id in the URL, 400 naming `param` for an id given in the body. Deleted
        objects are missing unless `allow_deleted` (customers answer their stub)."""
        obj = self.find(oid, object_name)
        if obj is None or (obj.get("deleted") and not allow_deleted):
            raise resource_missing(object_name, str(oid), param=param)
        if self.method != "GET":
            self._journal_before_write(oid)
        return obj

    def delete(self, object_name: str, oid: str) -> dict:
        """Replace the object by Stripe's deleted stub and return the stub. Lists
        skip it and `get()` treats it as missing unless `allow_deleted`."""
        self._journal_before_write(oid)
        stub = deleted_stub(object_name, oid)
        self.store.put(dict(stub))
        return stub

    def rollback(self) -> None:
        store = self.store
        for oid, old in self._journal.items():
            if old is None:
                obj = store.objects.pop(oid, None)
                account = store.owner.pop(oid, None)
                if obj is not None:
                    store.index[f"{account}/{obj['object']}"].remove(oid)
            else:
                store.objects[oid] = old
        self._journal.clear()
        self.pending_events.clear()

    def objects(self, object_name: str, *, include_deleted=False) -> Iterator[dict]:
        """This account's objects of a type, newest first; read-only."""
        objects = self.store.objects
        for oid in reversed(self.store.ids(self.account, object_name)):
            obj = objects[oid]
            if include_deleted or not obj.get("deleted"):
                yield obj

    def list(self, object_name: str, params: dict, *, url: str,
             where: Callable[[dict], bool] | None = None) -> dict:
        """A Stripe list object over this account's objects, newest first, with
        `limit`, `starting_after`, `ending_before`, `created` and `where`."""
        created = params.get("created")
        if not params.get("ending_before"):
            return self._list_forward(object_name, params, url=url, where=where)
        everything = list(self.objects(object_name))
        rank = {o["id"]: i for i, o in enumerate(everything)}
        items = [
            o for o in everything
            if (where is None or where(o)) and (created is None or in_range(o.get("created"), created))
        ]
        return paginate(items, params, url=url, object_name=object_name, rank=rank)

    def _list_forward(self, object_name: str, params: dict, *, url: str,
                      where: Callable[[dict], bool] | None) -> dict:
        """`list` without `ending_before`: the same page, read from the cursor's place
        and only as far as the page needs (a page deep in a long list stays cheap)."""
        limit = page_limit(params)
        created = params.get("created")
        ids, objects = self.store.ids(self.account, object_name), self.store.objects
        end = len(ids)
        after = params.get("starting_after")
        if after:
            cursor = objects.get(after) if isinstance(after, str) else None
            if cursor is None or cursor.get("deleted") or self.store.owner.get(after) != self.account \
                    or cursor.get("object") != object_name:
                raise resource_missing(object_name, after, param="starting_after")
            end = ids.index(after)
        page, has_more = [], False
        for i in range(end - 1, -1, -1):
            obj = objects[ids[i]]
            if obj.get("deleted") or (where is not None and not where(obj)) \
                    or (created is not None and not in_range(obj.get("created"), created)):
                continue
            if len(page) == limit:
                has_more = True
                break
            page.append(obj)
        return {"object": "list", "data": page, "has_more": has_more, "url": url}

    # -- events
    def emit(self, event_type: str, obj: dict, previous_attributes: dict | None = None,
             *, account: str | None = None) -> dict:
        from .events import emit  # events builds on this module

        return emit(self, event_type, obj, previous_attributes, account=account)


# -------------------------------------------------------------------- lists


def in_range(value, spec) -> bool:
    """Stripe's range filters: an exact int or {gt, gte, lt, lte}."""
    if value is None:
        return False
    if isinstance(spec, dict):
        return (
            ("gt" not in spec or value > spec["gt"])
            and ("gte" not in spec or value >= spec["gte"])
            and ("lt" not in spec or value < spec["lt"])
            and ("lte" not in spec or value <= spec["lte"])
        )
    return value == spec


def page_limit(params: dict) -> int:
    limit = params.get("limit", 10)
    if not 1 <= limit <= 100:
        raise invalid_request("Invalid limit: must be between 1 and 100", param="limit")
    return limit


def paginate(items: list[dict], params: dict, *, url: str, object_name: str = "object",
             rank: dict[str, int] | None = None) -> dict:
    """One page of `items` (already filtered, newest first) as a list object.

    `rank` gives every object's position in the unfiltered order, so that a cursor
    that a filter leaves out still marks a place, as on Stripe; without it the
    cursor must be among `items`."""
    limit = page_limit(params)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
            code="parameters_exclusive",
        )
    if rank is None:
        rank = {o["id"]: i for i, o in enumerate(items)}
    if after or before:
        cursor = after or before
        if cursor not in rank:
            raise resource_missing(object_name, cursor, param="starting_after" if after else "ending_before")
        mark = rank[cursor]
        if after:
            rest = [o for o in items if rank[o["id"]] > mark]
            page = rest[:limit]
        else:
            rest = [o for o in items if rank[o["id"]] < mark]
            page = rest[-limit:]
        has_more = len(rest) > limit
    else:
        page = items[:limit]
        has_more = len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


# ---------------------------------------------------------------- expansion

_MAX_EXPAND_DEPTH = 4  # Stripe: "You cannot expand more than 4 levels of a property."


def expand(ctx: Ctx, obj: dict, paths: Iterable[str]) -> dict:
    """Replace ids by the objects they name, along `expand[]` paths such as
    `default_price` or `data.default_price`.

    Nothing given is changed: every dict or list on the way to a replaced id is a
    new shallow copy, and the rest of the answer is the handler's objects (stored
    ones included) as they are. That is safe because the answer is only read: the
    pipeline shapes it (`conform` makes new dicts) and writes its JSON right away,
    with the store lock still held."""
    paths = list(paths)
    for path in paths:
        parts = path.split(".")
        if len(parts) > _MAX_EXPAND_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property. "
                f"Property: {path}",
                param="expand",
            )
        obj = _expand(ctx, obj, parts, path)
    return obj


def _expand(ctx: Ctx, node, parts: list[str], full: str):
    """`node` with `parts` expanded: a new list or dict if anything under it was
    replaced, else `node` itself."""
    if isinstance(node, list):
        items = [_expand(ctx, item, parts, full) for item in node]
        return node if all(a is b for a, b in zip(items, node)) else items
    if not isinstance(node, dict):
        return node
    key, rest = parts[0], parts[1:]
    if key not in node:
        raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
    value = node[key]
    if isinstance(value, str):
        kind = node.get("object")
        if kind not in (None, "list") and key not in expandable_fields(kind):
            raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
        target = ctx.find(value)
        if target is not None:
            value = target
    if rest and value is not None:
        value = _expand(ctx, value, rest, full)
    if value is node[key]:
        return node
    node = dict(node)
    node[key] = value
    return node


# ---------------------------------------------------------- metadata, updates

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def merge_metadata(current: dict, update, param: str = "metadata") -> tuple[dict, dict]:
    """Apply a metadata update as Stripe does: keys merge, an empty value unsets a
    key, an empty `metadata` unsets all. Returns (new, previous values of the
    keys that changed, None for keys that were absent)."""
    if update == "":
        return {}, dict(current)
    new = dict(current)
    previous = {}
    for key, value in update.items():
        if not isinstance(value, str):
            value = "" if value is None else str(value)
        if value == "":
            if key in new:
                previous[key] = new.pop(key)
            continue
        if new.get(key) != value:
            previous[key] = current.get(key)
            new[key] = value
    check_metadata(new, param)
    return new, previous


def check_metadata(metadata: dict, param: str = "metadata") -> None:
    # Limits from Stripe's metadata docs (docs.stripe.com/metadata).
    if len(metadata) > METADATA_MAX_KEYS:
        raise invalid_request(
            f"Invalid {param}: {param} can have up to {METADATA_MAX_KEYS} keys, "
            f"but you passed in {len(metadata)} keys.",
            param=param,
        )
    for key, value in metadata.items():
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise invalid_request(
                f"Metadata keys can have up to {METADATA_MAX_KEY_LENGTH} characters, but you "
                f"passed in a key that is {len(key)} characters: {key!r}.",
                param=f"{param}[{key}]",
            )
        if "[" in key or "]" in key:
            raise invalid_request(
                "Metadata keys can not contain square brackets ('[' or ']').", param=f"{param}[{key}]"
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise invalid_request(
                f"Metadata values can have up to {METADATA_MAX_VALUE_LENGTH} characters, but "
                f"you passed in a value that is {len(value)} characters. Invalid value: {value[:50]}...",
                param=f"{param}[{key}]",
            )


def metadata_from(params: dict, param: str = "metadata") -> dict:
    return merge_metadata({}, params.get(param) or {}, param)[0]


def apply_update(obj: dict, params: dict, fields: Iterable[str]) -> dict:
    """Copy `fields` present in `params` onto `obj` (in place) with Stripe's update
    rules: "" unsets (None), hashes merge key by key, metadata per merge_metadata.
    Returns `previous_attributes` for the `*.updated` event: old values of what
    changed, and for hashes only the keys that changed."""
    previous: dict = {}
    for name in fields:
        if name not in params:
            continue
        value = params[name]
        if name == "metadata":
            new, prev = merge_metadata(obj.get("metadata") or {}, value)
            if prev:
                previous["metadata"] = prev
                obj["metadata"] = new
            continue
        old = obj.get(name)
        new = _merge(old, value)
        if new != old:
            previous[name] = _previous(old, new)
            obj[name] = new
    if previous:
        # Hashes set from nothing get the rest of their declared fields.
        obj.update(shape(obj["object"], **obj))
    return previous


def _merge(old, value):
    if value == "":
        return None
    if isinstance(old, dict) and isinstance(value, dict):
        out = dict(old)
        for k, v in value.items():
            out[k] = _merge(old.get(k), v)
        return out
    return value


def _previous(old, new):
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: _previous(old.get(k), v) for k, v in new.items() if old.get(k) != v}
    return old


def copy_json(obj):
    """A deep copy of JSON data (faster than copy.deepcopy for plain dicts)."""
    return json.loads(json.dumps(obj))


__all__ = [
    "Ctx", "Response", "Route", "StripeError", "apply_update", "check_metadata", "copy_json",
    "expand", "in_range", "match", "merge_metadata", "metadata_from", "new_id", "paginate",
    "random_token", "route",
]
