"""Customers: create, retrieve, update, delete, list (docs.stripe.com/api/customers).

Accepted but not modelled: cash_balance, payment_method, source, tax, test_clock,
validate (no sources, test clocks or Stripe Tax here).
"""

from __future__ import annotations

import os

import stripe

from ..core import apply_update, metadata_from, route
from ..errors import invalid_request, resource_missing
from ..schema import shape

# Params copied onto the object as given.
_CREATE_FIELDS = (
    "address", "balance", "business_name", "description", "email", "individual_name",
    "invoice_prefix", "name", "next_invoice_sequence", "phone", "preferred_locales",
    "shipping", "tax_exempt",
)
_UPDATE_FIELDS = _CREATE_FIELDS + ("invoice_settings", "metadata", "default_source")


def _blank_to_none(params: dict, names) -> dict:
    return {k: (None if params[k] == "" else params[k]) for k in names if k in params}


def _check_default_payment_method(ctx, customer_id: str | None, settings) -> None:
    """Stripe accepts only a payment method attached to this customer."""
    pm_id = (settings or {}).get("default_payment_method") if isinstance(settings, dict) else None
    if not pm_id:
        return
    param = "invoice_settings[default_payment_method]"
    pm = ctx.get("payment_method", pm_id, param=param)
    if customer_id is None or pm.get("customer") != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
            param=param,
            code="resource_missing",
        )


def _tax_id(ctx, customer_id: str, datum: dict) -> dict:
    kind, value = datum["type"], datum["value"]
    # EU VAT numbers start with their country code; other types name the country.
    country = value[:2].upper() if kind == "eu_vat" else kind.split("_")[0].upper()
    return shape(
        "tax_id",
        id=ctx.new_id("txi"),
        country=country,
        created=ctx.now(),
        customer=customer_id,
        livemode=False,
        owner={"type": "customer", "customer": customer_id},
        type=kind,
        value=value,
        verification={"status": "pending", "verified_address": None, "verified_name": None}
        if kind in ("eu_vat", "gb_vat", "au_abn") else None,
    )


@route("POST", "/v1/customers", params=stripe.params.CustomerCreateParams)
def create(ctx, params):
    cid = ctx.new_id("cus")
    settings = params.get("invoice_settings") or {}
    # A new customer has no payment methods yet, so any default is foreign to it.
    _check_default_payment_method(ctx, None, settings)
    tax_ids = [_tax_id(ctx, cid, d) for d in params.get("tax_id_data") or []]
    fields = {
        "balance": 0,
        "delinquent": False,
        "invoice_prefix": os.urandom(4).hex().upper(),
        "next_invoice_sequence": 1,
        "preferred_locales": [],
        "tax_exempt": "none",
        **_blank_to_none(params, _CREATE_FIELDS),
    }
    customer = shape(
        "customer",
        id=cid,
        created=ctx.now(),
        livemode=False,
        metadata=metadata_from(params),
        invoice_settings=settings,
        tax_ids={"object": "list", "data": tax_ids, "has_more": False, "url": f"/v1/customers/{cid}/tax_ids"},
        **fields,
    )
    ctx.insert(customer)
    ctx.emit("customer.created", customer)
    return customer


@route("GET", "/v1/customers/{customer}", params=stripe.params.CustomerRetrieveParams)
def retrieve(ctx, params, customer):
    # A deleted customer still answers, with its deleted stub (API reference).
    return ctx.get("customer", customer, allow_deleted=True)


@route("POST", "/v1/customers/{customer}", params=stripe.params.CustomerUpdateParams)
def update(ctx, params, customer):
    obj = ctx.get("customer", customer)
    if "invoice_settings" in params:
        _check_default_payment_method(ctx, customer, params["invoice_settings"])
    previous = apply_update(obj, params, _UPDATE_FIELDS)
    if previous:
        ctx.save(obj)
        ctx.emit("customer.updated", obj, previous)
    return obj


@route("DELETE", "/v1/customers/{customer}", params=stripe.params.CustomerDeleteParams)
def delete(ctx, params, customer):
    obj = ctx.get("customer", customer)
    ctx.emit("customer.deleted", obj)
    return ctx.delete("customer", customer)


@route("GET", "/v1/customers", params=stripe.params.CustomerListParams)
def list_(ctx, params):
    email = params.get("email")
    return ctx.list(
        "customer", params, url="/v1/customers",
        where=(lambda c: c.get("email") == email) if email else None,
    )


# --- a customer's tax ids: Stripe's only way to change them after creation ----------
def _tax_ids(obj: dict) -> list:
    return obj["tax_ids"]["data"]


def _customer_tax_id(ctx, customer: str, tax_id: str) -> tuple[dict, dict]:
    obj = ctx.get("customer", customer)
    for item in _tax_ids(obj):
        if item["id"] == tax_id:
            return obj, item
    raise resource_missing("tax_id", tax_id)


@route("POST", "/v1/customers/{customer}/tax_ids", params=stripe.params.CustomerCreateTaxIdParams)
def tax_id_create(ctx, params, customer):
    obj = ctx.get("customer", customer)
    item = _tax_id(ctx, customer, params)
    _tax_ids(obj).append(item)
    ctx.save(obj)
    ctx.emit("customer.tax_id.created", item)
    return item


@route("GET", "/v1/customers/{customer}/tax_ids/{tax_id}", params=stripe.params.CustomerRetrieveTaxIdParams)
def tax_id_retrieve(ctx, params, customer, tax_id):
    return _customer_tax_id(ctx, customer, tax_id)[1]


@route("DELETE", "/v1/customers/{customer}/tax_ids/{tax_id}", params=stripe.params.CustomerDeleteTaxIdParams)
def tax_id_delete(ctx, params, customer, tax_id):
    obj, item = _customer_tax_id(ctx, customer, tax_id)
    obj["tax_ids"]["data"] = [t for t in _tax_ids(obj) if t["id"] != tax_id]
    ctx.save(obj)
    ctx.emit("customer.tax_id.deleted", item)
    return {"id": tax_id, "object": "tax_id", "deleted": True}


@route("GET", "/v1/customers/{customer}/tax_ids", params=stripe.params.CustomerListTaxIdsParams)
def tax_id_list(ctx, params, customer):
    data = list(reversed(_tax_ids(ctx.get("customer", customer))))  # newest first, as lists are
    limit = int(params.get("limit") or 10)
    return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": f"/v1/customers/{customer}/tax_ids"}
