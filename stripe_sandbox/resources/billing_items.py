"""Invoice items (docs.stripe.com/api/invoiceitems): create, retrieve, update,
delete, list. An item without `invoice` is pending: the customer's next invoice
created with `pending_invoice_items_behavior=include` takes it.

Pricing, one of: `amount` (the item's total), `unit_amount_decimal`, `price_data`
(an inline price: Stripe makes an archived Price for it) or `pricing[price]` (a
one-time Price). amount = quantity x unit amount, rounded half up. An item on a
finalized invoice can no longer change.
"""

from __future__ import annotations

from decimal import Decimal

import stripe

from ..core import merge_metadata, route
from ..errors import invalid_request
from ..schema import shape
from .billing_common import (
    answer, check_currency, dec, decimal_str, emit, exclusive, round_half_up, update_fields,
)
from .billing_lines import MAX_LINES, attach, changes, detach, refresh, snapshot
from .billing_tax import make_discounts, set_discount_owner, tax_rates_param

_PRICING_SOURCES = ("amount", "price_data", "pricing", "unit_amount_decimal")


def _name(prefix: str, p: str) -> str:
    return f"{prefix}[{p}]" if prefix else p


def default_currency(ctx, customer: dict) -> str:
    account = ctx.store.objects.get(ctx.account) or {}
    return customer.get("currency") or account.get("default_currency") or "usd"


def _inline_price(ctx, data: dict, prefix: str) -> dict:
    """The archived Price Stripe creates for `price_data`."""
    if "product_data" in data:
        exclusive(data, ("product", "product_data"), within=prefix)
        pd = data["product_data"]
        now = ctx.now()
        product = shape(
            "product", id=ctx.new_id("prod"), active=True, created=now, updated=now, livemode=False,
            name=pd["name"], description=pd.get("description"), images=pd.get("images", []),
            metadata=merge_metadata({}, pd.get("metadata") or {}, f"{prefix}[product_data][metadata]")[0],
            tax_code=pd.get("tax_code"),
            unit_label=pd.get("unit_label"), type="service", marketing_features=[],
        )
        ctx.insert(product)
        emit(ctx, "product.created", product)
    elif "product" in data:
        product = ctx.get("product", data["product"], param=f"{prefix}[product]")
    else:
        raise invalid_request(f"Missing required param: {prefix}[product].",
                              param=f"{prefix}[product]", code="parameter_missing")
    exclusive(data, ("unit_amount", "unit_amount_decimal"), within=prefix)
    if "unit_amount" in data:
        unit = Decimal(data["unit_amount"])
    elif "unit_amount_decimal" in data:
        unit = dec(data["unit_amount_decimal"])
    else:
        raise invalid_request(f"Missing required param: {prefix}[unit_amount].",
                              param=f"{prefix}[unit_amount]", code="parameter_missing")
    if unit < 0:
        raise invalid_request("Invalid non-negative integer", param=f"{prefix}[unit_amount]")
    price = shape(
        "price", id=ctx.new_id("price"), active=False, billing_scheme="per_unit", created=ctx.now(),
        currency=check_currency(data["currency"], f"{prefix}[currency]"), livemode=False,
        product=product["id"], tax_behavior=data.get("tax_behavior", "unspecified"), type="one_time",
        unit_amount=int(unit) if unit == unit.to_integral_value() else None,
        unit_amount_decimal=decimal_str(unit),
    )
    ctx.insert(price)
    return price


def pricing_from(ctx, spec: dict, prefix: str = "") -> dict | None:
    """{"unit": Decimal, "currency", "price", "product", "amount"} from one of the
    pricing params, or None when `spec` names none (updates)."""
    exclusive(spec, _PRICING_SOURCES, within=prefix)
    if "pricing" in spec:
        pid = (spec["pricing"] or {}).get("price")
        if not pid:
            raise invalid_request(f"Missing required param: {_name(prefix, 'pricing')}[price].",
                                  param=f"{_name(prefix, 'pricing')}[price]", code="parameter_missing")
        price = ctx.get("price", pid, param=f"{_name(prefix, 'pricing')}[price]")
        if price["type"] != "one_time":
            raise invalid_request(
                f"The price specified ({pid}) is set to `type=recurring` but this field only accepts "
                "prices with `type=one_time`.", param=f"{_name(prefix, 'pricing')}[price]",
            )
        if price["unit_amount_decimal"] is None:
            raise invalid_request(f"The price {pid} has no unit amount.", param=f"{_name(prefix, 'pricing')}[price]")
        return {"unit": dec(price["unit_amount_decimal"]), "currency": price["currency"],
                "price": price["id"], "product": price["product"], "amount": None}
    if "price_data" in spec:
        price = _inline_price(ctx, spec["price_data"], _name(prefix, "price_data"))
        return {"unit": dec(price["unit_amount_decimal"]), "currency": price["currency"],
                "price": price["id"], "product": price["product"], "amount": None}
    if "unit_amount_decimal" in spec:
        return {"unit": dec(spec["unit_amount_decimal"]), "currency": None, "price": None,
                "product": None, "amount": None}
    if "amount" in spec:
        return {"unit": None, "currency": None, "price": None, "product": None, "amount": spec["amount"]}
    return None


def _quantity(spec: dict, prefix: str, current: Decimal | None) -> Decimal:
    exclusive(spec, ("quantity", "quantity_decimal"), within=prefix)
    if "quantity" in spec:
        q = Decimal(spec["quantity"])
    elif "quantity_decimal" in spec:
        q = dec(spec["quantity_decimal"])
    else:
        return current if current is not None else Decimal(1)
    if q < 0:
        raise invalid_request("Invalid non-negative integer",
                              param=_name(prefix, "quantity" if "quantity" in spec else "quantity_decimal"))
    return q


def _apply_pricing(item: dict, pricing: dict, qty: Decimal) -> None:
    if pricing["amount"] is not None:
        amount = pricing["amount"]
        unit = Decimal(amount) / qty if qty else Decimal(amount)
    else:
        unit = pricing["unit"]
        amount = round_half_up(qty * unit)
    details = {"price": pricing["price"], "product": pricing["product"]} if pricing["price"] else None
    item["amount"] = amount
    item["pricing"] = {"type": "price_details", "price_details": details,
                       "unit_amount_decimal": decimal_str(unit)}
    item["quantity"] = int(qty)
    item["quantity_decimal"] = decimal_str(qty)
    item["_pricing"] = {"amount": pricing["amount"], "unit": None if pricing["amount"] is not None else str(unit)}


def new_item(ctx, spec: dict, *, customer: dict, invoice: dict | None, prefix: str = "") -> dict:
    """Validate and build (not store) an invoice item from create/add_lines params."""
    pricing = pricing_from(ctx, spec, prefix)
    if pricing is None:
        raise invalid_request(
            f"Missing required param: {_name(prefix, 'amount')}. Pass one of amount, price_data, "
            "pricing or unit_amount_decimal.", param=_name(prefix, "amount"), code="parameter_missing",
        )
    given = check_currency(spec["currency"], _name(prefix, "currency")) if spec.get("currency") else None
    currency = (invoice or {}).get("currency") or pricing["currency"] or given or default_currency(ctx, customer)
    for cur, where in ((pricing["currency"], "price_data[currency]" if "price_data" in spec else "pricing[price]"),
                       (given, "currency")):
        if cur and cur != currency:
            raise invalid_request(
                f"The currency of the invoice item ({cur}) must match the currency of the invoice ({currency}).",
                param=_name(prefix, where.split("[")[0]),
            )
    qty = _quantity(spec, prefix, None)
    _check_period(spec, prefix)
    now = ctx.now()
    item = shape(
        "invoiceitem",
        id=ctx.new_id("ii"),
        currency=currency,
        customer=customer["id"],
        date=now,
        description=spec.get("description"),
        discountable=spec.get("discountable", True),
        discounts=[],
        invoice=None,
        livemode=False,
        metadata=merge_metadata({}, spec.get("metadata") or {}, _name(prefix, "metadata"))[0],
        period=spec.get("period") or {"start": now, "end": now},
        proration=False,
        tax_rates=tax_rates_param(ctx, spec.get("tax_rates"), _name(prefix, "tax_rates")),
    )
    _apply_pricing(item, pricing, qty)
    if item["amount"] < 0 and "discountable" not in spec:
        item["discountable"] = False  # Stripe's default for negative items
    if item["description"] is None and pricing["product"]:
        item["description"] = ctx.find(pricing["product"], "product")["name"]
    item["discounts"] = make_discounts(ctx, spec.get("discounts"), param=_name(prefix, "discounts"),
                                       customer=customer["id"], currency=currency, invoice_item=item["id"])
    _set_net(item)
    return item


def _check_period(spec: dict, prefix: str) -> None:
    period = spec.get("period")
    if period and period["end"] < period["start"]:
        raise invalid_request("The period's end must be greater than or equal to its start.",
                              param=f"{_name(prefix, 'period')}[end]")


def _set_net(item: dict) -> None:
    # "net_amount: ... null for discountable=true items" (API reference).
    item["net_amount"] = None if item["discountable"] else item["amount"]


def update_item(ctx, item: dict, spec: dict, *, prefix: str = "") -> dict:
    """Apply update params to an item (not saved); returns previous_attributes."""
    before = {k: v for k, v in item.items() if not k.startswith("_")}
    invoice = ctx.find(item["invoice"], "invoice") if item["invoice"] else None
    if invoice is not None and invoice["status"] != "draft":
        raise invalid_request(
            f"The invoice item {item['id']} is on invoice {invoice['id']}, which is {invoice['status']}: "
            "only items on draft invoices can be changed.", param=prefix or None,
        )
    pricing = pricing_from(ctx, spec, prefix)
    if pricing is not None and pricing["currency"] and pricing["currency"] != item["currency"]:
        raise invalid_request(
            f"The currency of the price ({pricing['currency']}) must match the invoice item's ({item['currency']}).",
            param=_name(prefix, "price_data" if "price_data" in spec else "pricing"),
        )
    if pricing is not None or "quantity" in spec or "quantity_decimal" in spec:
        current = item["_pricing"]
        if pricing is None:
            pricing = {"amount": None, "unit": dec(current["unit"]) if current["unit"] is not None else None,
                       "price": ((item["pricing"] or {}).get("price_details") or {}).get("price"),
                       "product": ((item["pricing"] or {}).get("price_details") or {}).get("product"),
                       "currency": None}
            if pricing["unit"] is None:
                # An amount-priced item scales its unit amount with the new quantity.
                pricing["unit"] = dec(item["pricing"]["unit_amount_decimal"])
        _apply_pricing(item, pricing, _quantity(spec, prefix, dec(item["quantity_decimal"])))
    if "tax_rates" in spec:
        item["tax_rates"] = tax_rates_param(ctx, spec["tax_rates"], _name(prefix, "tax_rates"))
    if "discounts" in spec:
        item["discounts"] = make_discounts(ctx, spec["discounts"], param=_name(prefix, "discounts"),
                                           customer=item["customer"], currency=item["currency"],
                                           invoice_item=item["id"])
    _check_period(spec, prefix)
    update_fields(item, spec, ("description", "discountable", "metadata", "period"))
    _set_net(item)
    return changes(before, item)


# ---------------------------------------------------------------------- routes


@route("POST", "/v1/invoiceitems", params=stripe.params.InvoiceItemCreateParams)
def create(ctx, params):
    for unsupported in ("customer_account", "subscription"):
        if unsupported in params:
            raise invalid_request(f"stripe_sandbox does not model `{unsupported}` on invoice items.",
                                  param=unsupported)
    if "tax_behavior" in params or "tax_code" in params:
        pass  # Stripe Tax settings: accepted, no effect without automatic tax
    invoice = None
    if params.get("invoice"):
        invoice = ctx.get("invoice", params["invoice"], param="invoice")
    if "customer" not in params:
        if invoice is None:
            raise invalid_request("Missing required param: customer.", param="customer", code="parameter_missing")
        params = dict(params, customer=invoice["customer"])
    customer = ctx.get("customer", params["customer"], param="customer")
    if invoice is not None:
        check_attachable(invoice, customer["id"], 1, param="invoice")
    item = new_item(ctx, params, customer=customer, invoice=invoice)
    ctx.insert(item)
    emit_created(ctx, item, invoice)
    return answer(ctx, item, params)


def check_attachable(invoice: dict, customer_id: str, adding: int, *, param: str | None) -> None:
    if invoice["status"] != "draft":
        raise invalid_request(
            f"Invoice {invoice['id']} is {invoice['status']}: invoice items can only be added to draft invoices.",
            param=param,
        )
    if invoice["customer"] != customer_id:
        raise invalid_request(
            f"The invoice {invoice['id']} belongs to a different customer ({invoice['customer']}).", param=param
        )
    if len(invoice["_lines"]) + adding > MAX_LINES:
        raise invalid_request(
            f"An invoice can have at most {MAX_LINES} line items; invoice {invoice['id']} has "
            f"{len(invoice['_lines'])} and this request adds {adding}.", param=param or "lines",
        )


def emit_created(ctx, item: dict, invoice: dict | None) -> None:
    """Store-side follow-up of a new item: discounts learn its id, it joins its
    invoice, events go out (invoiceitem.created, then invoice.updated)."""
    set_discount_owner(ctx, item["discounts"], invoice_item=item["id"])
    if invoice is None:
        emit(ctx, "invoiceitem.created", item)
        return
    before = snapshot(invoice)
    attach(ctx, invoice, item)
    emit(ctx, "invoiceitem.created", item)
    refresh(ctx, invoice)
    previous = changes(before, invoice)
    emit(ctx, "invoice.updated", invoice, previous)


@route("GET", "/v1/invoiceitems/{invoiceitem}", params=stripe.params.InvoiceItemRetrieveParams)
def retrieve(ctx, params, invoiceitem):
    return answer(ctx, ctx.get("invoiceitem", invoiceitem), params)


@route("POST", "/v1/invoiceitems/{invoiceitem}", params=stripe.params.InvoiceItemUpdateParams)
def update(ctx, params, invoiceitem):
    item = ctx.get("invoiceitem", invoiceitem)
    previous = update_item(ctx, item, params)
    ctx.save(item)
    if previous:
        emit(ctx, "invoiceitem.updated", item, previous)
        invoice = ctx.get("invoice", item["invoice"]) if item["invoice"] else None
        if invoice is not None:
            before = snapshot(invoice)
            refresh(ctx, invoice)
            inv_prev = changes(before, invoice)
            if inv_prev:
                emit(ctx, "invoice.updated", invoice, inv_prev)
    return answer(ctx, item, params)


@route("DELETE", "/v1/invoiceitems/{invoiceitem}", params=stripe.params.InvoiceItemDeleteParams)
def delete(ctx, params, invoiceitem):
    item = ctx.get("invoiceitem", invoiceitem)
    invoice = ctx.find(item["invoice"], "invoice") if item["invoice"] else None
    if invoice is not None and invoice["status"] != "draft":
        raise invalid_request(
            f"The invoice item {item['id']} is on invoice {invoice['id']}, which is {invoice['status']}: "
            "only items on draft invoices can be deleted."
        )
    return answer(ctx, delete_item(ctx, item), params)


def delete_item(ctx, item: dict) -> dict:
    invoice = ctx.get("invoice", item["invoice"]) if item["invoice"] else None
    emit(ctx, "invoiceitem.deleted", item)
    if invoice is not None:
        before = snapshot(invoice)
        detach(ctx, invoice, item)
        refresh(ctx, invoice)
        emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    return ctx.delete("invoiceitem", item["id"])


@route("GET", "/v1/invoiceitems", params=stripe.params.InvoiceItemListParams)
def list_(ctx, params):
    customer, invoice, pending = params.get("customer"), params.get("invoice"), params.get("pending")

    def where(ii):
        return (
            (customer is None or ii["customer"] == customer)
            and (invoice is None or ii["invoice"] == invoice)
            and (pending is None or (ii["invoice"] is None) == pending)
        )

    return answer(ctx, ctx.list("invoiceitem", params, url="/v1/invoiceitems", where=where), params)
