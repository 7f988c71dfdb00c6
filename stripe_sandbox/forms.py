"""Stripe's form encoding: `metadata[a]=b`, `items[0][price]=p`, `expand[]=x`.

Decoding yields nested dicts; `key[]` appends to a list. Indexed keys (`items[0]`),
which is what stripe-python sends for every list, stay dicts keyed "0", "1", ...
until the parameter schema says the value is a list (see schema.py): only the
schema can tell `items[0]` (a list) from `metadata[0]` (a hash key "0").
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from .errors import invalid_request


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    parts = [head]
    while bracket:
        inner, closed, rest = rest.partition("]")
        if not closed:
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        parts.append(inner)
        if not rest:
            break
        if not rest.startswith("["):
            raise invalid_request(f"Invalid parameter name: {key}", param=key)
        rest = rest[1:]
    return parts


def decode(raw: str | bytes) -> dict:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    out: dict = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = _split_key(key)
        node = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                # `key[]=v`: append; only scalars are supported after `[]`, as Stripe
                # documents arrays of hashes with explicit indexes.
                if not isinstance(node, list):
                    raise invalid_request(f"Invalid array: {key}", param=parts[0])
                if not last:
                    raise invalid_request(f"Invalid parameter name: {key}", param=key)
                node.append(value)
                break
            want_list = not last and parts[i + 1] == ""
            if last:
                if isinstance(node, list):
                    raise invalid_request(f"Invalid array: {key}", param=parts[0])
                if isinstance(node.get(part), (dict, list)):
                    raise invalid_request(f"Invalid hash: {key}", param=key)
                node[part] = value
            else:
                if isinstance(node, list):
                    raise invalid_request(f"Invalid parameter name: {key}", param=key)
                child = node.get(part)
                if child is None:
                    child = [] if want_list else {}
                    node[part] = child
                elif isinstance(child, str) or isinstance(child, list) != want_list:
                    raise invalid_request(f"Invalid hash: {key}", param=key)
                node = child
    return out


def encode(params: dict) -> str:
    """The inverse of `decode` (lists as indexed keys, like stripe-python)."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        elif value is not None:
            pairs.append((prefix, str(value)))

    walk("", params)
    return urlencode(pairs)
