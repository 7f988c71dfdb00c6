"""The straightforward answer shaping that the sandbox's faster one must agree with.

`conform` is spec_shapes.conform as it was before it was compiled per schema (one loop
over an object's keys that looks every field up in the table); `expand` is
core.expand as it was before it copied only what it changes (a deep copy of the whole
answer, then expansion in place). test_conform_reference.py compares them with the
sandbox's, byte for byte after json.dumps, over Stripe's example objects and over what
the sandbox stores and answers. The schema table's lookups (`schema_for`, `_props`),
which the faster shaping did not change, are spec_shapes' own.
"""

from __future__ import annotations

import json

from stripe_sandbox.errors import invalid_request
from stripe_sandbox.schema import expandable_fields, resource_url
from stripe_sandbox.spec_shapes import INCLUDABLE, KEPT_OUTSIDE_SPEC, _props, schema_for, schemas


def _pick(refs: tuple[str, ...], value: dict) -> str:
    if len(refs) == 1:
        return refs[0]
    kind = value.get("object")
    deleted = bool(value.get("deleted"))
    table_ = schemas()
    for ref in refs:
        if table_[ref].get("o") == kind and ref.startswith("deleted_") == deleted:
            return ref
    for ref in refs:
        if table_[ref].get("o") == kind:
            return ref
    # Inline alternatives without an `object`: the one whose fields fit best.
    return max(refs, key=lambda r: len(set(_props(r)) & set(value)))


def _empty(kind: str, refs: tuple[str, ...], owner_url: str | None, key: str):
    if kind == "i" or kind == "f":
        return 0
    if kind == "b":
        return False
    if kind == "a":
        return []
    if kind == "h":
        return {}
    if kind == "o" and len(refs) == 1:
        if schemas()[refs[0]].get("o") == "list":
            return {"object": "list", "data": [], "has_more": False,
                    "url": f"{owner_url}/{key}" if owner_url else None}
        return conform_as(refs[0], {})
    return None


def conform_as(name: str, value: dict, url: str | None = None) -> dict:
    """`value` shaped by the component schema `name` (a new dict). `url`: the
    object's own URL, from which a sub-list without one gets its `url`."""
    props = _props(name)
    kept = KEPT_OUTSIDE_SPEC.get(name, frozenset())
    out = {}
    for key, v in value.items():
        prop = props.get(key)
        if prop is None:
            if key in kept:
                out[key] = v
            continue
        flags, kind, refs = prop
        if v is None:
            if "n" in flags:
                out[key] = None
            elif "r" in flags:
                out[key] = _empty(kind, refs, url, key)
            continue
        out[key] = _value(kind, refs, v, url, key)
    for key, (flags, kind, refs) in props.items():
        if key not in out and "r" in flags:
            out[key] = None if "n" in flags else _empty(kind, refs, url, key)
    return out


def _value(kind: str, refs: tuple[str, ...], v, url, key):
    if not refs:
        return v
    if isinstance(v, dict):
        if v.get("object") == "list" and not v.get("url") and url:
            v = {**v, "url": f"{url}/{key}"}
        return conform_as(_pick(refs, v), v)
    if isinstance(v, list):
        return [conform_as(_pick(refs, i), i) if isinstance(i, dict) else i for i in v]
    return v


def conform(obj, expand=()):
    """An answer as the spec writes it: a resource, a deleted stub or a list.
    `expand`: the request's `expand[]` paths (includable fields asked for stay)."""
    if not isinstance(obj, dict):
        return obj
    if obj.get("object") in ("list", "search_result"):
        out = dict(obj)
        inner = [p[5:] for p in expand if p.startswith("data.")]
        out["data"] = [conform(o, inner) for o in obj.get("data", [])]
        return out
    includable = INCLUDABLE.get(obj.get("object"))
    if includable:
        asked = {p.split(".", 1)[0] for p in expand}
        obj = {k: v for k, v in obj.items() if k not in includable or k in asked}
    if obj.get("object") == "event" and isinstance(obj.get("data"), dict):
        out = conform_as("event", obj)
        out["data"] = {**out["data"], "object": conform(obj["data"].get("object"))}
        return out
    name = schema_for(obj)
    if name is None:
        return obj
    return conform_as(name, obj, resource_url(obj["object"], obj.get("id")))


def expand(ctx, obj: dict, paths) -> dict:
    paths = list(paths)
    if not paths:
        return obj
    obj = json.loads(json.dumps(obj))
    for path in paths:
        parts = path.split(".")
        if len(parts) > 4:
            raise invalid_request(f"You cannot expand more than 4 levels of a property. Property: {path}",
                                  param="expand")
        _expand(ctx, obj, parts, path)
    return obj


def _expand(ctx, node, parts: list[str], full: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand(ctx, item, parts, full)
        return
    if not isinstance(node, dict):
        return
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
            value = json.loads(json.dumps(target))
            node[key] = value
    if rest and value is not None:
        _expand(ctx, value, rest, full)
