"""Products and prices (docs.stripe.com/api/products, /api/prices).

Stripe's rules kept here: a price's amount and currency never change (the update
params don't have them, so they are unknown parameters); a product with prices
cannot be deleted, only archived; a lookup key is unique among an account's
prices unless moved with `transfer_lookup_key`.
"""

from __future__ import annotations

from decimal import Decimal

import stripe

from ..core import apply_update, metadata_from, route
from ..errors import StripeError, invalid_request
from ..schema import shape

_PRODUCT_FIELDS = (
    "active", "description", "images", "marketing_features", "name", "package_dimensions",
    "shippable", "statement_descriptor", "tax_code", "unit_label", "url",
)


# ------------------------------------------------------------------- products


@route("POST", "/v1/products", params=stripe.params.ProductCreateParams)
def create_product(ctx, params):
    product = ctx.insert(_new_product(ctx, params))
    price = None
    if "default_price_data" in params:
        data = dict(params["default_price_data"], product=product["id"])
        price = _new_price(ctx, data, param="default_price_data")
        product["default_price"] = price["id"]
    ctx.emit("product.created", product)
    if price is not None:
        ctx.emit("price.created", price)
    return product


def _new_product(ctx, params: dict, *, id_param: str = "id") -> dict:
    pid = params.get("id") or ctx.new_id("prod")
    if ctx.store.objects.get(pid) is not None:
        raise StripeError(400, "Product already exists.", code="resource_already_exists", param=id_param)
    now = ctx.now()
    fields = {k: (None if params[k] == "" else params[k]) for k in _PRODUCT_FIELDS if k in params}
    return shape(
        "product",
        id=pid,
        created=now,
        updated=now,
        livemode=False,
        metadata=metadata_from(params),
        **{"active": True, "type": params.get("type", "service"), **fields},
    )


@route("GET", "/v1/products/{product}", params=stripe.params.ProductRetrieveParams)
def retrieve_product(ctx, params, product):
    return ctx.get("product", product)


@route("POST", "/v1/products/{product}", params=stripe.params.ProductUpdateParams)
def update_product(ctx, params, product):
    obj = ctx.get("product", product)
    default = params.get("default_price")
    if default:
        price = ctx.get("price", default, param="default_price")
        if price["product"] != product:
            raise invalid_request(
                f"The price `{default}` does not belong to this product.", param="default_price"
            )
        if not price["active"]:
            raise invalid_request(
                f"The price `{default}` is archived and cannot be the default price.", param="default_price"
            )
    previous = apply_update(obj, params, _PRODUCT_FIELDS + ("default_price", "metadata"))
    if previous:
        previous["updated"] = obj["updated"]
        obj["updated"] = ctx.now()
        ctx.save(obj)
        ctx.emit("product.updated", obj, previous)
    return obj


@route("DELETE", "/v1/products/{product}", params=stripe.params.ProductDeleteParams)
def delete_product(ctx, params, product):
    obj = ctx.get("product", product)
    if any(p["product"] == product for p in ctx.objects("price")):
        raise invalid_request(
            "This product cannot be deleted because it has one or more user-created prices."
        )
    ctx.emit("product.deleted", obj)
    return ctx.delete("product", product)


@route("GET", "/v1/products", params=stripe.params.ProductListParams)
def list_products(ctx, params):
    ids = set(params["ids"]) if params.get("ids") else None
    checks = [(k, params[k]) for k in ("active", "shippable", "type", "url") if k in params]

    def where(p):
        return (ids is None or p["id"] in ids) and all(p.get(k) == v for k, v in checks)

    return ctx.list("product", params, url="/v1/products", where=where)


# --------------------------------------------------------------------- prices


@route("POST", "/v1/prices", params=stripe.params.PriceCreateParams)
def create_price(ctx, params):
    if "product" in params and "product_data" in params:
        raise invalid_request(
            "You may only specify one of these parameters: product, product_data.",
            code="parameters_exclusive",
        )
    if "product_data" in params:
        product = _new_product(ctx, params["product_data"], id_param="product_data[id]")
        ctx.insert(product)
        ctx.emit("product.created", product)
        params = dict(params, product=product["id"])
    elif "product" not in params:
        raise invalid_request("Missing required param: product.", param="product", code="parameter_missing")
    price = _new_price(ctx, params)
    ctx.emit("price.created", price)
    return price


def _new_price(ctx, params: dict, *, param: str = "") -> dict:
    """Validate, store and return a price (no event: callers order their events)."""
    def name(p):
        return f"{param}[{p}]" if param else p

    ctx.get("product", params["product"], param=name("product"))
    scheme = params.get("billing_scheme", "per_unit")
    amount, decimal = params.get("unit_amount"), params.get("unit_amount_decimal")
    if amount is not None and decimal is not None:
        raise invalid_request(
            "You may only specify one of these parameters: unit_amount, unit_amount_decimal.",
            code="parameters_exclusive",
        )
    if scheme == "per_unit" and amount is None and decimal is None and "custom_unit_amount" not in params:
        raise invalid_request(
            "Missing required param: unit_amount.", param=name("unit_amount"), code="parameter_missing"
        )
    if amount is not None and amount < 0:
        raise invalid_request("Invalid non-negative integer", param=name("unit_amount"))
    if decimal is not None:
        d = Decimal(decimal)
        if d < 0:
            raise invalid_request("Invalid decimal: must be non-negative", param=name("unit_amount_decimal"))
        # Whole amounts show in unit_amount too; fractional ones only as decimals.
        amount = int(d) if d == d.to_integral_value() else None
    elif amount is not None:
        decimal = str(amount)
    lookup_key = params.get("lookup_key") or None
    if lookup_key:
        _claim_lookup_key(ctx, lookup_key, params.get("transfer_lookup_key", False), None)
    recurring = params.get("recurring")
    if recurring:
        recurring = {"interval_count": 1, "usage_type": "licensed", "meter": None,
                     "trial_period_days": None, **recurring}
    price = shape(
        "price",
        id=ctx.new_id("price"),
        active=params.get("active", True),
        billing_scheme=scheme,
        created=ctx.now(),
        currency=params["currency"].lower(),
        currency_options=params.get("currency_options"),
        custom_unit_amount=params.get("custom_unit_amount"),
        livemode=False,
        lookup_key=lookup_key,
        metadata=metadata_from(params),
        nickname=params.get("nickname"),
        product=params["product"],
        recurring=recurring,
        tax_behavior=params.get("tax_behavior", "unspecified"),
        tiers=_tiers(params.get("tiers")),
        tiers_mode=params.get("tiers_mode"),
        transform_quantity=params.get("transform_quantity"),
        type="recurring" if recurring else "one_time",
        unit_amount=amount,
        unit_amount_decimal=decimal,
    )
    return ctx.insert(price)


def _claim_lookup_key(ctx, key: str, transfer: bool, price_id: str | None) -> None:
    holder = next((p for p in ctx.objects("price") if p["lookup_key"] == key and p["id"] != price_id), None)
    if holder is None:
        return
    if not transfer:
        raise invalid_request(f"A price (`{holder['id']}`) already uses that lookup key.", param="lookup_key")
    other = ctx.get("price", holder["id"])
    other["lookup_key"] = None
    ctx.save(other)
    ctx.emit("price.updated", other, {"lookup_key": key})


@route("GET", "/v1/prices/{price}", params=stripe.params.PriceRetrieveParams)
def retrieve_price(ctx, params, price):
    return ctx.get("price", price)


@route("POST", "/v1/prices/{price}", params=stripe.params.PriceUpdateParams)
def update_price(ctx, params, price):
    obj = ctx.get("price", price)
    if params.get("lookup_key"):
        _claim_lookup_key(ctx, params["lookup_key"], params.get("transfer_lookup_key", False), price)
    if "tax_behavior" in params and obj["tax_behavior"] not in (None, "unspecified") \
            and params["tax_behavior"] != obj["tax_behavior"]:
        # "Once specified as either inclusive or exclusive, it cannot be changed."
        raise invalid_request(
            "tax_behavior cannot be changed once it is set to inclusive or exclusive.",
            param="tax_behavior",
        )
    previous = apply_update(obj, params, ("active", "currency_options", "lookup_key", "metadata",
                                          "nickname", "tax_behavior"))
    if previous:
        ctx.save(obj)
        ctx.emit("price.updated", obj, previous)
    return obj


@route("GET", "/v1/prices", params=stripe.params.PriceListParams)
def list_prices(ctx, params):
    keys = set(params["lookup_keys"]) if params.get("lookup_keys") else None
    checks = [(k, params[k]) for k in ("active", "product", "type") if k in params]
    currency = params.get("currency", "").lower() or None
    recurring = params.get("recurring") or {}

    def where(p):
        return (
            (keys is None or p["lookup_key"] in keys)
            and (currency is None or p["currency"] == currency)
            and all(p.get(k) == v for k, v in checks)
            and all((p["recurring"] or {}).get(k) == v for k, v in recurring.items())
        )

    return ctx.list("price", params, url="/v1/prices", where=where)


def _tiers(tiers: list | None) -> list | None:
    """Price tiers as Stripe answers them: the last tier's `up_to: "inf"` is null,
    amounts given one way are mirrored the other (`unit_amount_decimal` as a string)."""
    if not tiers:
        return None
    out = []
    for tier in tiers:
        row = {}
        for name in ("flat_amount", "unit_amount"):
            whole, dec = tier.get(name), tier.get(f"{name}_decimal")
            if whole is None and dec not in (None, ""):
                row[name], row[f"{name}_decimal"] = None, str(dec)
            else:
                row[name] = whole
                row[f"{name}_decimal"] = None if whole is None else str(whole)
        up_to = tier.get("up_to")
        row["up_to"] = None if up_to in (None, "inf") else int(up_to)
        out.append(row)
    return out
