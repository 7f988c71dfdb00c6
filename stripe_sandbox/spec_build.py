"""Derive the sandbox's compact shape table from Stripe's OpenAPI spec.

    .venv/bin/python -m stripe_sandbox.spec_build [../shared/stripe/spec3.json]

writes `stripe_sandbox/spec_shapes.json`: for every component schema reachable
from the responses of the endpoints the sandbox serves (and from `event` and
`error`), its properties with

* `r`: required (always present), `n`: nullable (null when unset); a property
  with neither appears only when it applies;
* the kind of its value: `i` integer, `f` number, `b` boolean, `s` string,
  `h` hash (free-form object, e.g. metadata), `o` object of a schema, `a` array
  (of the schemas listed, if any), `x` expandable (an id, or the object when
  expanded);
* the schemas its value (or, for arrays, each item) may be; inline objects get
  the name `<schema>.<property>`.

Each schema also carries `o`, the `object` value it stands for (its
`x-resourceId`, or the single enum of its `object` property). The sandbox reads
only this table (spec_shapes.py), so it runs without the spec; this script is
the one place that reads the spec, and is re-run when the pinned API version
changes. Only stdlib.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SPEC = HERE.parent.parent / "shared" / "stripe" / "spec3.json"
OUT = HERE / "spec_shapes.json"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


class Builder:
    def __init__(self, spec: dict):
        self.spec = spec
        self.components = spec["components"]["schemas"]
        self.table: dict[str, dict] = {}

    def add_component(self, name: str) -> str:
        if name not in self.table:
            self.add_schema(name, self.components[name])
        return name

    def add_schema(self, name: str, schema: dict) -> str:
        if name in self.table:
            return name
        entry: dict = {}
        self.table[name] = entry
        props = schema.get("properties") or {}
        obj = schema.get("x-resourceId")
        if obj is None:
            enum = (props.get("object") or {}).get("enum") or []
            obj = enum[0] if len(enum) == 1 else None
        if obj:
            entry["o"] = obj
        required = set(schema.get("required") or ())
        out = {}
        for prop, sub in props.items():
            flags = ("r" if prop in required else "") + ("n" if sub.get("nullable") else "")
            kind, refs = self.describe(f"{name}.{prop}", sub)
            out[prop] = [flags + kind, *refs] if refs else flags + kind
        entry["p"] = out
        return name

    def describe(self, inline_name: str, sub: dict) -> tuple[str, list[str]]:
        """(kind letter, schema names) of one property's value."""
        if "$ref" in sub:
            return "o", [self.add_component(_ref_name(sub["$ref"]))]
        alts = sub.get("anyOf") or sub.get("oneOf")
        if alts:
            refs, expandable, kinds = [], False, set()
            for i, alt in enumerate(alts):
                if "$ref" in alt:
                    refs.append(self.add_component(_ref_name(alt["$ref"])))
                elif alt.get("type") == "string" and any("$ref" in a for a in alts):
                    expandable = True
                elif alt.get("type") == "object" and alt.get("properties"):
                    refs.append(self.add_schema(f"{inline_name}#{i}", alt))
                else:
                    kinds.add(self.describe(inline_name, alt)[0])
            if expandable:
                return "x", refs
            if refs:
                return "o", refs
            return (kinds.pop() if len(kinds) == 1 else "s"), []
        t = sub.get("type")
        if t == "array":
            kind, refs = self.describe(inline_name + "[]", sub.get("items") or {})
            return "a", refs if kind in ("o", "x") else []
        if t == "object":
            if sub.get("properties"):
                return "o", [self.add_schema(inline_name, sub)]
            return "h", []
        return {"integer": "i", "number": "f", "boolean": "b"}.get(t, "s"), []


def served_routes() -> list[tuple[str, str]]:
    """(method, spec path) of every API endpoint the sandbox routes."""
    from . import core
    from .app import load_resources

    load_resources()
    routes = list(core._static.values()) + [r for b in core._dynamic.values() for r in b]  # noqa: SLF001
    return sorted((r.method, r.pattern) for r in routes if r.auth == "api")


def spec_path(spec: dict, method: str, pattern: str) -> str | None:
    """The spec's path for a sandbox route (parameter names may differ)."""
    shape = re.sub(r"\{\w+\}", "{}", pattern)
    for path, ops in spec["paths"].items():
        if re.sub(r"\{\w+\}", "{}", path) == shape and method.lower() in ops:
            return path
    return None


def build(spec: dict) -> dict:
    b = Builder(spec)
    b.add_component("error")
    b.add_component("event")
    for method, pattern in served_routes():
        path = spec_path(spec, method, pattern)
        if path is None:
            continue
        op = spec["paths"][path][method.lower()]
        schema = op["responses"]["200"]["content"]["application/json"]["schema"]
        b.describe(f"{method} {path}", schema)
    # Objects events carry are the resources above; also the deleted_* twins.
    for name in list(b.table):
        if f"deleted_{name}" in b.components:
            b.add_component(f"deleted_{name}")
    return {
        "api_version": spec["info"]["version"],
        "schemas": dict(sorted(b.table.items())),
    }


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SPEC
    spec = json.loads(path.read_text())
    table = build(spec)
    OUT.write_text(json.dumps(table, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"{OUT}: {len(table['schemas'])} schemas, API version {table['api_version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
