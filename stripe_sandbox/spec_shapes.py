"""Objects as Stripe's OpenAPI spec writes them.

The sandbox keeps its objects with every field stripe-python declares (handlers
read and write them freely). What leaves the sandbox -- API answers, events'
`data.object`, webhook payloads -- goes through `conform()`, which follows the
spec's component schema for the object (the compact table `spec_shapes.json`,
made from the spec by `spec_build.py`):

* `required` fields are always present: a nullable one is `null` when unset, a
  non-nullable one gets its empty value (0, false, [], {}, an empty nested
  object) when the sandbox has none;
* `nullable` fields that are not required are sent, `null` when unset;
* every other field appears only when it applies: a `null` there is left out
  (type-specific hashes such as `payment_method_details.card` appear only for
  the type in use);
* expandable fields are an id, or the object (shaped by its own schema) when
  expanded; arrays and nested objects are shaped by their item's schema;
* fields the spec does not know are left out, except the few in
  `KEPT_OUTSIDE_SPEC` (stripe-python declares them and the sandbox returns them
  as Stripe does; see README).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .schema import resource_url

TABLE_FILE = Path(__file__).resolve().parent / "spec_shapes.json"

# Fields stripe-python declares that the spec's schema lacks, kept in answers
# because Stripe still returns them (they are in Stripe's own example objects,
# fixtures3.json). Others the SDK declares and the spec lacks (charge's
# `authorization_code`, `level3`) are left out.
KEPT_OUTSIDE_SPEC: dict[str, frozenset[str]] = {
    "product": frozenset({"type"}),
    "payment_intent": frozenset({"source"}),
    "charge": frozenset({"source"}),
}


# "Includable" fields: optional in the spec, and sent by Stripe only when asked
# for with `expand[]` (API reference: "This field is not included by default").
INCLUDABLE: dict[str, frozenset[str]] = {
    "customer": frozenset({"cash_balance", "invoice_credit_balance", "sources", "subscriptions",
                           "tax", "tax_ids"}),
    "price": frozenset({"currency_options", "tiers"}),
    "coupon": frozenset({"applies_to", "currency_options"}),
}


@lru_cache(maxsize=1)
def table() -> dict:
    return json.loads(TABLE_FILE.read_text())


def schemas() -> dict:
    return table()["schemas"]


@lru_cache(maxsize=1)
def _by_object() -> dict[str, str]:
    """`object` value -> component schema (the resource's own schema wins over
    nested look-alikes; deleted_* stubs are picked by `schema_for`)."""
    out: dict[str, str] = {}
    for name, entry in schemas().items():
        obj = entry.get("o")
        if obj and obj != "list" and not name.startswith("deleted_"):
            out.setdefault(obj, name)
    for name, entry in schemas().items():
        if entry.get("o") == name:
            out[name] = name
    return out


def schema_for(obj: dict) -> str | None:
    """The component schema of a top-level object (by its `object` value)."""
    kind = obj.get("object")
    if not isinstance(kind, str):
        return None
    if obj.get("deleted") and f"deleted_{kind}" in schemas():
        return f"deleted_{kind}"
    return _by_object().get(kind)


def _parse(spec) -> tuple[str, str, tuple[str, ...]]:
    if isinstance(spec, str):
        flags, refs = spec, ()
    else:
        flags, refs = spec[0], tuple(spec[1:])
    return flags[:-1], flags[-1], refs


@lru_cache(maxsize=None)
def _props(name: str) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {k: _parse(v) for k, v in schemas()[name]["p"].items()}


# ------------------------------------------------------------------ shaping
#
# Shaping runs for every object of every answer, nested ones included (a page of 100
# invoices is 1,650 objects, one of 100 payment intents with their charges expanded
# 2,300), so the rules above are compiled once per schema and per key set an object
# has (`_plan`): the sandbox's objects of one type all have the same keys in the same
# order (`schema.shape` gives them every declared field), so a page reuses one plan per
# schema. A plan copies the object in one C-level step and deletes the few keys the
# spec does not name, then visits only the keys that need more: non-nullable plain
# fields (a None there is dropped, or becomes the empty value) and fields shaped by
# their own schema. tests/reference_conform.py has the rules as a plain loop over
# every key; tests/test_conform_reference.py holds the two equal.


def _pick(refs: tuple[str, ...], value: dict) -> str:
    if len(refs) == 1:
        return refs[0]
    kind = value.get("object")
    # (An `object` that is not a string names none of the schemas: not cached.)
    picked = _pick_by_object(refs, kind, bool(value.get("deleted"))) if kind is None or isinstance(kind, str) \
        else None
    if picked is not None:
        return picked
    # Inline alternatives without an `object`: the one whose fields fit best.
    return max(refs, key=lambda r: len(set(_props(r)) & set(value)))


@lru_cache(maxsize=None)
def _pick_by_object(refs: tuple[str, ...], kind, deleted: bool) -> str | None:
    table_ = schemas()
    for ref in refs:
        if table_[ref].get("o") == kind and ref.startswith("deleted_") == deleted:
            return ref
    for ref in refs:
        if table_[ref].get("o") == kind:
            return ref
    return None


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


# What a None in a field becomes: itself (nullable), the field's empty value
# (required, not nullable), or nothing (the field is left out).
_NULL, _EMPTY, _DROP = 0, 1, 2


def _on_none(flags: str) -> int:
    return _NULL if "n" in flags else _EMPTY if "r" in flags else _DROP


# Plans made at most (a bound on memory should objects come with ever new key sets;
# past it, plans are made for each object and not kept).
_MAX_PLANS = 20_000
_plans: dict[tuple[str, tuple[str, ...]], tuple] = {}


def _plan(name: str, keys: tuple[str, ...]) -> tuple:
    """How to shape an object with `keys` (in this order) by schema `name`: a tuple
    (how to copy, the keys for it, non-nullable plain fields to check for None,
    fields shaped by their own schema, required fields absent). Copying is the whole
    dict then deleting the few keys not kept (`_COPY`, with the keys to delete), or
    picking the kept keys one by one (`_PICK`, with the keys kept)."""
    props = _props(name)
    kept_outside = KEPT_OUTSIDE_SPEC.get(name, frozenset())
    known, dropped, checks, nested = [], [], [], []
    for key in keys:
        prop = props.get(key)
        if prop is None:
            (known if key in kept_outside else dropped).append(key)
            continue
        known.append(key)
        flags, kind, refs = prop
        if refs:
            nested.append((key, _on_none(flags), kind, refs))
        elif "n" not in flags:
            checks.append((key, _on_none(flags), kind))
    present = set(keys)
    missing = tuple((key, "n" in flags, kind, refs) for key, (flags, kind, refs) in props.items()
                    if "r" in flags and key not in present)
    # A dict copy is one C call whatever its size; a pick costs per key.
    copy = (_COPY, tuple(dropped)) if len(dropped) <= len(known) // 2 else (_PICK, tuple(known))
    return (*copy, tuple(checks), tuple(nested), missing)


_COPY, _PICK = 0, 1


def conform_as(name: str, value: dict, url: str | None = None) -> dict:
    """`value` shaped by the component schema `name` (a new dict). `url`: the
    object's own URL, from which a sub-list without one gets its `url`."""
    keys = tuple(value)
    plan = _plans.get((name, keys))
    if plan is None:
        plan = _plan(name, keys)
        if len(_plans) < _MAX_PLANS:
            _plans[(name, keys)] = plan
    how, keys, checks, nested, missing = plan
    # The kept fields with their values, in the object's order; what follows
    # changes values in place (a dict keeps a key's place) or deletes keys.
    if how == _COPY:
        out = value.copy()
        for key in keys:
            del out[key]
    else:
        out = {key: value[key] for key in keys}
    for key, on_none, kind in checks:
        if out[key] is None:
            if on_none == _EMPTY:
                out[key] = _empty(kind, (), url, key)
            else:
                del out[key]
    for key, on_none, kind, refs in nested:
        v = out[key]
        if v is None:
            if on_none == _EMPTY:
                out[key] = _empty(kind, refs, url, key)
            elif on_none == _DROP:
                del out[key]
        elif isinstance(v, dict):
            if url and v.get("object") == "list" and not v.get("url"):
                v = {**v, "url": f"{url}/{key}"}
            out[key] = conform_as(refs[0] if len(refs) == 1 else _pick(refs, v), v)
        elif isinstance(v, list):
            out[key] = [conform_as(refs[0] if len(refs) == 1 else _pick(refs, i), i)
                        if isinstance(i, dict) else i for i in v]
    for key, nullable, kind, refs in missing:
        out[key] = None if nullable else _empty(kind, refs, url, key)
    return out


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
        unasked = [k for k in includable if k in obj and k not in asked]
        if unasked:
            obj = obj.copy()
            for key in unasked:
                del obj[key]
    if obj.get("object") == "event" and isinstance(obj.get("data"), dict):
        out = conform_as("event", obj)
        out["data"] = {**out["data"], "object": conform(obj["data"].get("object"))}
        return out
    name = schema_for(obj)
    if name is None:
        return obj
    return conform_as(name, obj, resource_url(obj["object"], obj.get("id")))
