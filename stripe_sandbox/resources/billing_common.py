"""What the billing modules (tax rates, coupons, invoice items, invoices) share:
internal fields, answers, expansion of id lists, money rounding.

Internal fields. Billing objects keep a few fields of their own in the store, named
with a leading underscore (`_hosted_token` on invoices, the line order, a coupon's
terms on a discount). They never leave the sandbox: `public()` drops them from
every answer and event. That is also why billing handlers answer with their own
`Response` (`answer()`) instead of returning the dict: the framework would expand
ids into stored objects, internal fields included, and it expands single ids only,
while invoices hold lists of ids (`discounts`, `lines.data.discounts`) that
`expand[]` reaches on Stripe.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..core import Response, apply_update, copy_json
from ..errors import StripeError, invalid_request
from ..spec_shapes import conform, schema_for

_MAX_EXPAND_DEPTH = 4


def _visible(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def public(obj):
    """A deep copy without internal (`_`-prefixed) keys.

    Internal keys live only at the top of stored objects (nothing embeds a stored
    object as is: lines and expansions embed `public()` copies), so filtering the top
    level, and the objects of a list page, is enough; the copy is one C-level JSON
    round trip."""
    if isinstance(obj, list):
        return [public(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    shallow = _visible(obj)
    if shallow.get("object") == "list" and isinstance(shallow.get("data"), list):
        shallow["data"] = [_visible(d) if isinstance(d, dict) else d for d in shallow["data"]]
    return copy_json(shallow)


def _shaped_by_spec(obj) -> bool:
    """Whether `conform` shapes `obj` (or every object of the list `obj`) by a spec
    schema, which drops its internal keys."""
    if not isinstance(obj, dict):
        return False
    if obj.get("object") == "list":
        data = obj.get("data")
        return isinstance(data, list) and all(isinstance(o, dict) and schema_for(o) is not None for o in data)
    return schema_for(obj) is not None and obj.get("object") != "event"


def emit(ctx, event_type: str, obj: dict, previous: dict | None = None) -> None:
    ctx.emit(event_type, public(obj), public(previous) if previous is not None else None)


def answer(ctx, obj: dict, params: dict, *, extra=None) -> Response:
    """The JSON answer for `obj` with `expand[]` applied, internal fields dropped.
    `extra(out, paths)` may fill includable fields that were asked for."""
    paths = params.get("expand") or []
    if isinstance(paths, dict):
        paths = list(paths.values())
    if not paths and _shaped_by_spec(obj):
        # Without expansion `public()`'s deep copy is not needed: `conform` makes a
        # new dict of every object it shapes and leaves out the keys the spec does
        # not name (internal keys included: no spec field starts with `_`); what
        # it passes through as is (plain values, metadata) is only read, by the
        # json.dumps below, before the handler returns with the store lock held.
        out = dict(obj)
        if extra is not None:
            extra(out, paths)
        return Response.json(conform(out, paths))
    out = public(obj)
    for path in paths:
        parts = path.split(".")
        if len(parts) > _MAX_EXPAND_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {_MAX_EXPAND_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        out = _expand(ctx, out, parts, path)
    if extra is not None:
        extra(out, paths)
    return Response.json(conform(out, paths))


def _expand(ctx, node, parts: list[str], full: str):
    if isinstance(node, list):
        return [_expand(ctx, item, parts, full) for item in node]
    if isinstance(node, str):
        target = ctx.find(node)
        if target is None:
            return node
        node = public(target)
    if not parts or not isinstance(node, dict):
        return node
    key, rest = parts[0], parts[1:]
    if key not in node:
        raise invalid_request(f"This property cannot be expanded ({full}).", param="expand")
    if node[key] is not None:
        node[key] = _expand(ctx, node[key], rest, full)
    return node


def update_fields(obj: dict, params: dict, fields) -> dict:
    """The framework's `apply_update` on an object that has internal fields (which
    its re-shaping would reject); returns previous_attributes."""
    hidden = {k: obj.pop(k) for k in list(obj) if k.startswith("_")}
    try:
        return apply_update(obj, params, fields)
    finally:
        obj.update(hidden)


# ---------------------------------------------------------------------- money


def dec(value) -> Decimal:
    """A Decimal from an int, a decimal string or a float param (via its repr, so
    19.6 stays 19.6)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def round_half_up(value: Decimal) -> int:
    """Stripe rounds each line's amounts to the nearest minor unit, halves away
    from zero (support.stripe.com, "Rounding rules": 0.0645 -> 0.06, 0.7265 -> 0.73)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def decimal_str(value: Decimal) -> str:
    """Stripe's decimal strings: no exponent, no trailing zeros ("1999", "12.5")."""
    text = format(value.normalize(), "f")
    return text


def check_currency(value: str, param: str = "currency") -> str:
    cur = (value or "").lower()
    if len(cur) != 3 or not cur.isalpha():
        raise invalid_request(f"Invalid currency: {value}.", param=param)
    return cur


def exclusive(params: dict, names, *, within: str = "") -> None:
    """Stripe's parameters_exclusive error when more than one of `names` is given
    (`within`: the hash they sit in, e.g. "lines[0]")."""
    given = [n for n in names if n in params]
    if len(given) > 1:
        shown = ", ".join(f"{within}[{n}]" if within else n for n in names)
        raise invalid_request(
            f"You may only specify one of these parameters: {shown}.", code="parameters_exclusive"
        )


def unexpected_state(message: str) -> StripeError:
    # Stripe's documented code for an action the invoice's status does not allow.
    return StripeError(400, message, code="invoice_unexpected_state")


def base_url(ctx) -> str:
    """The sandbox's own address as the client reached it (hosted invoice links)."""
    configured = getattr(ctx.sandbox, "public_url", None) or getattr(ctx.sandbox, "base_url", None)
    if isinstance(configured, str) and configured:
        return configured.rstrip("/")
    headers = ctx.headers
    host = headers.get("Host") if hasattr(headers, "get") else None
    return f"http://{host or 'localhost'}"
