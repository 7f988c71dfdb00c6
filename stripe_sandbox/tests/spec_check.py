"""Check answers against Stripe's OpenAPI spec (test helper).

Reads the spec itself (../shared/stripe/spec3.json from the repository root, or
$STRIPE_SPEC3), independently of the sandbox's derived table, and validates with
`jsonschema`. OpenAPI's `nullable: true` becomes a union with null, so a `null`
where the spec has no `nullable` is an error; objects with declared properties
get `additionalProperties: false`, so a key the spec does not know is an error
too, except the few stripe-python declares that Stripe still returns
(EXTRA_ALLOWED, listed in the sandbox README).

`SpecChecker.check_response(method, url_path, status, body)` picks the
operation's 200 schema (or `error` for any other status) by matching the path
against the spec's paths; events' `data.object` is checked against the schema of
its own `object`.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = Path(os.environ.get("STRIPE_SPEC3", REPO.parent / "shared" / "stripe" / "spec3.json"))

# Declared by stripe-python, absent from the spec, present in Stripe's example objects.
EXTRA_ALLOWED = {
    "product": {"type"},
    "payment_intent": {"source"},
    "charge": {"source"},
}


def require_spec() -> None:
    if not SPEC.exists():
        pytest.skip(f"Stripe's OpenAPI spec is not available at {SPEC} (set STRIPE_SPEC3)")
    pytest.importorskip("jsonschema", reason="jsonschema (requirements.txt) validates answers against the spec")


def _convert(node, name: str | None = None):
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": "#/$defs/" + node["$ref"].rsplit("/", 1)[-1]}
    out = {}
    for key, value in node.items():
        if key.startswith("x-") or key in ("description", "title", "nullable", "format"):
            continue
        if key == "properties":
            out[key] = {k: _convert(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = _convert(value) if not isinstance(value, bool) else value
        else:
            out[key] = value
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
        for extra in EXTRA_ALLOWED.get(name or "", ()):
            out["properties"].setdefault(extra, {})
    if node.get("nullable"):
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        return {"anyOf": [out, {"type": "null"}]}
    return out


class SpecChecker:
    def __init__(self, spec: dict):
        import jsonschema

        self.spec = spec
        comps = spec["components"]["schemas"]
        self.defs = {name: _convert(schema, name) for name, schema in comps.items()}
        self.by_object = {}
        for name, schema in comps.items():
            rid = schema.get("x-resourceId")
            if rid and not name.startswith("deleted_"):
                self.by_object.setdefault(rid, name)
        self._validators: dict[str, object] = {}
        self._jsonschema = jsonschema
        self._paths = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", p) + "$"), p, ops)
            for p, ops in spec["paths"].items()
        ]
        # Literal paths before templated ones (/v1/invoices/upcoming before {invoice}).
        self._paths.sort(key=lambda t: t[1].count("{"))

    def validator(self, name: str):
        v = self._validators.get(name)
        if v is None:
            cls = self._jsonschema.Draft202012Validator
            v = cls({"$defs": self.defs, "$ref": f"#/$defs/{name}"})
            self._validators[name] = v
        return v

    def errors(self, name: str, obj) -> list[str]:
        out = []
        for err in self.validator(name).iter_errors(obj):
            out.append(_describe(err))
        if name == "event" and isinstance(obj, dict):
            out += [f"data.object: {e}" for e in self.object_errors((obj.get("data") or {}).get("object"))]
        return out

    def object_errors(self, obj) -> list[str]:
        """A resource checked against the schema of its `object` value."""
        if not isinstance(obj, dict):
            return [f"not an object: {obj!r}"]
        kind = obj.get("object")
        if obj.get("deleted") and f"deleted_{kind}" in self.defs:
            return self.errors(f"deleted_{kind}", obj)
        name = self.by_object.get(kind) or (kind if kind in self.defs else None)
        if name is None:
            return [f"no schema for object {kind!r}"]
        return self.errors(name, obj)

    def operation(self, method: str, path: str) -> tuple[str, dict] | tuple[None, None]:
        for regex, template, ops in self._paths:
            if regex.match(path) and method.lower() in ops:
                return template, ops[method.lower()]
        return None, None

    def check_response(self, method: str, path: str, status: int, body) -> tuple[str | None, list[str]]:
        """(spec path, errors) for one answer."""
        template, op = self.operation(method, path)
        if status != 200:
            return template, self.errors("error", body)
        if op is None:
            return None, [f"{method} {path} is not in the spec"]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            errs = self.errors(name, body)
        else:
            validator = self._jsonschema.Draft202012Validator({"$defs": self.defs, **_convert(schema)})
            errs = [_describe(e) for e in validator.iter_errors(body)]
        if isinstance(body, dict) and body.get("object") == "list":
            for item in body.get("data") or []:
                if isinstance(item, dict) and item.get("object") == "event":
                    errs += [f"data.object: {e}" for e in self.object_errors(item["data"]["object"])]
        return template, errs


def _describe(err) -> str:
    # anyOf failures: report the closest branch's complaint, not "is not valid under any".
    best = err
    while best.context:
        best = min(best.context, key=lambda e: (len(e.path) * -1, e.validator == "type"))
    where = "/".join(str(p) for p in best.absolute_path) or "(root)"
    return f"{where}: {best.message[:200]}"


@lru_cache(maxsize=1)
def checker() -> SpecChecker:
    return SpecChecker(json.loads(SPEC.read_text()))


class Recorder:
    """Every answer a StripeClient got, checked: install with `recording_client`."""

    def __init__(self, checker_: SpecChecker):
        self.checker = checker_
        self.seen: list[dict] = []

    def record(self, method: str, url: str, status: int, content: str) -> None:
        from urllib.parse import urlsplit

        path = urlsplit(url).path
        if not path.startswith("/v1/"):
            return  # connect.stripe.com's OAuth endpoints are not in the API's spec
        try:
            body = json.loads(content)
        except ValueError:
            body = content
        template, errs = self.checker.check_response(method, path, status, body)
        self.seen.append({"method": method.upper(), "path": path, "spec_path": template,
                          "status": status, "errors": errs})

    @property
    def failures(self) -> list[dict]:
        return [s for s in self.seen if s["errors"]]

    def report(self) -> str:
        lines = []
        for s in self.failures:
            lines.append(f"{s['method']} {s['path']} -> {s['status']}:")
            lines += [f"    {e}" for e in s["errors"][:8]]
        return "\n".join(lines)


def recording_http_client(recorder: Recorder):
    """stripe-python's default HTTP client, reporting each answer to `recorder`."""
    import stripe
    from stripe._http_client import new_default_http_client

    inner = new_default_http_client()

    class Recording(type(inner)):
        def request(self, method, url, headers, post_data=None, **kwargs):
            content, status, rheaders = super().request(method, url, headers, post_data, **kwargs)
            recorder.record(method, url, status, content)
            return content, status, rheaders

    del stripe
    return Recording()


def key_problems(obj: dict, object_name: str) -> list[str]:
    """Top-level keys against the spec's schema for `object_name`: required ones
    missing, and keys the schema does not have (EXTRA_ALLOWED aside). Skips the
    test without the spec."""
    require_spec()
    spec = checker().spec["components"]["schemas"]
    name = checker().by_object.get(object_name, object_name)
    schema = spec[name]
    allowed = set(schema["properties"]) | EXTRA_ALLOWED.get(name, set())
    out = [f"missing required {k}" for k in sorted(set(schema.get("required", ())) - set(obj))]
    out += [f"not in the spec: {k}" for k in sorted(set(obj) - allowed)]
    return out


def _sub_schema(spec: dict, schema: dict) -> dict | None:
    """The object schema a property's value follows (through $ref / anyOf)."""
    if "$ref" in schema:
        return spec[schema["$ref"].rsplit("/", 1)[-1]]
    for alt in schema.get("anyOf") or ():
        if "$ref" in alt:
            return spec[alt["$ref"].rsplit("/", 1)[-1]]
    if schema.get("type") == "object" and schema.get("properties"):
        return schema
    if schema.get("type") == "array":
        return _sub_schema(spec, schema.get("items") or {})
    return None


def missing_required(example, ours, object_name: str) -> list[str]:
    """Keys of Stripe's example object our object lacks although the spec requires
    them, at every depth (the example shows optional fields our object may
    rightly leave out: they appear only when they apply)."""
    require_spec()
    spec = checker().spec["components"]["schemas"]

    def walk(ex, mine, schema, path):
        out = []
        if isinstance(ex, list) and isinstance(mine, list) and ex and mine:
            return walk(ex[0], mine[0], schema, path + "0.")
        if not (isinstance(ex, dict) and isinstance(mine, dict)) or schema is None:
            return out
        props, required = schema.get("properties") or {}, set(schema.get("required") or ())
        if ex.get("object") == "list" and mine.get("object") == "list":
            props = props or {}
        for key, value in ex.items():
            if key == "metadata":
                continue
            if key not in mine:
                if key in required:
                    out.append(path + key)
            elif key in props:
                out += walk(value, mine[key], _sub_schema(spec, props[key]), f"{path}{key}.")
        return out

    return walk(example, ours, spec[checker().by_object.get(object_name, object_name)], "")
