"""Invoices (docs.stripe.com/api/invoices): create, retrieve, update, delete,
list, and their lines (list, add_lines, remove_lines, update_lines, update one
line). The status changes (finalize, send, pay, void, mark_uncollectible) are in
billing_collect.py.

Drafts are fully editable and their totals follow every change. "Once an
invoice is finalized, monetary values, as well as collection_method, become
uneditable" (API reference, Update an invoice): discounts, default tax rates,
lines, currency and collection method are then refused, while description,
footer, custom fields, metadata, auto_advance and (until paid or void) the due
date still change.

Not modelled, refused with a 400 naming the parameter: subscriptions, revisions
(`from_invoice`), Connect charges (`transfer_data`, `application_fee_amount`,
`on_behalf_of`), shipping costs, Stripe Tax (`automatic_tax[enabled]=true`),
manual `tax_amounts` on lines, `customer_account`. Accepted without effect:
`rendering`, `issuer`, `payment_settings` beyond `payment_method_types`.
"""

from __future__ import annotations

import stripe

from ..core import in_range, metadata_from, paginate, route
from ..errors import invalid_request, resource_missing
from ..schema import shape
from .billing_common import answer, check_currency, emit, unexpected_state, update_fields
from .billing_items import check_attachable, default_currency, new_item, update_item
from .billing_lines import MAX_LINES, attach, changes, detach, lines_of, refresh, snapshot
from .billing_tax import make_discounts, set_discount_owner, tax_rates_param

DAY = 24 * 3600
MAX_CUSTOM_FIELDS = 4
CUSTOM_FIELD_NAME_MAX = 40
CUSTOM_FIELD_VALUE_MAX = 140

_NOT_MODELLED = ("application_fee_amount", "customer_account", "from_invoice", "on_behalf_of",
                 "shipping_cost", "subscription", "transfer_data")
# Editable while draft / after finalization (not paid or void) / always.
_DRAFT_ONLY = ("collection_method", "default_tax_rates", "discounts", "number", "shipping_details",
               "account_tax_ids", "default_source")
_OPEN_TOO = ("due_date", "days_until_due", "default_payment_method", "effective_at")
_ALWAYS = ("auto_advance", "custom_fields", "description", "footer", "metadata", "statement_descriptor",
           "rendering", "issuer", "payment_settings", "automatic_tax", "automatically_finalizes_at")


def customer_snapshot(customer: dict) -> dict:
    """The customer_* fields an invoice copies from its customer."""
    tax_ids = (customer.get("tax_ids") or {}).get("data") or []
    return {
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": customer.get("shipping"),
        "customer_tax_exempt": customer.get("tax_exempt") or "none",
        "customer_tax_ids": [{"type": t["type"], "value": t["value"]} for t in tax_ids],
    }


def account_snapshot(ctx) -> dict:
    account = ctx.store.objects.get(ctx.account) or {}
    name = ((account.get("settings") or {}).get("dashboard") or {}).get("display_name") \
        or (account.get("business_profile") or {}).get("name")
    return {"account_country": account.get("country"), "account_name": name}


def _check_not_modelled(params: dict) -> None:
    for name in _NOT_MODELLED:
        if name in params and params[name] not in ("", None):
            raise invalid_request(f"stripe_sandbox does not model invoices with `{name}`.", param=name)
    if (params.get("automatic_tax") or {}).get("enabled"):
        raise invalid_request("stripe_sandbox has no Stripe Tax: automatic_tax[enabled] must be false; "
                              "use tax rates.", param="automatic_tax[enabled]")


def _custom_fields(value) -> list | None:
    if value in (None, ""):
        return None
    if len(value) > MAX_CUSTOM_FIELDS:
        raise invalid_request(
            f"Invalid array: custom_fields can have at most {MAX_CUSTOM_FIELDS} items.", param="custom_fields"
        )
    for i, f in enumerate(value):
        if not f["name"] or len(f["name"]) > CUSTOM_FIELD_NAME_MAX:
            raise invalid_request(
                f"Invalid custom_fields[{i}][name]: must be 1 to {CUSTOM_FIELD_NAME_MAX} characters.",
                param=f"custom_fields[{i}][name]",
            )
        if not f["value"] or len(f["value"]) > CUSTOM_FIELD_VALUE_MAX:
            raise invalid_request(
                f"Invalid custom_fields[{i}][value]: must be 1 to {CUSTOM_FIELD_VALUE_MAX} characters.",
                param=f"custom_fields[{i}][value]",
            )
    return [{"name": f["name"], "value": f["value"]} for f in value]


def _check_number_free(ctx, number: str, own_id: str | None) -> None:
    for other in ctx.objects("invoice"):
        if other["number"] == number and other["id"] != own_id:
            raise invalid_request(f"An invoice with the number {number} already exists.", param="number")


def _due(ctx, params: dict, method: str, *, created: int) -> tuple[int | None, int | None]:
    """(due_date, days_until_due) for the collection method, as Stripe checks them."""
    days, due = params.get("days_until_due"), params.get("due_date")
    if method == "charge_automatically":
        for name in ("days_until_due", "due_date"):
            if params.get(name) is not None:
                raise invalid_request(
                    f"Invoices with collection_method=charge_automatically cannot have {name}; it is only "
                    "valid for collection_method=send_invoice.", param=name,
                )
        return None, None
    if days is not None and due is not None:
        raise invalid_request("You may only specify one of these parameters: days_until_due, due_date.",
                              code="parameters_exclusive")
    if days is None and due is None:
        raise invalid_request(
            "Missing required param: days_until_due. Invoices with collection_method=send_invoice need "
            "either days_until_due or due_date.", param="days_until_due", code="parameter_missing",
        )
    if days is not None:
        if days < 0:
            raise invalid_request("Invalid non-negative integer", param="days_until_due")
        return created + days * DAY, days
    if due < ctx.now():
        raise invalid_request("The due_date must be in the future.", param="due_date")
    return due, None


def _default_pm(ctx, pm_id: str | None, customer_id: str) -> str | None:
    if not pm_id:
        return None
    pm = ctx.get("payment_method", pm_id, param="default_payment_method")
    if pm.get("customer") != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment method must be "
            "attached to the customer.", param="default_payment_method", code="resource_missing",
        )
    return pm_id


# ---------------------------------------------------------------------- create


@route("POST", "/v1/invoices", params=stripe.params.InvoiceCreateParams)
def create(ctx, params):
    _check_not_modelled(params)
    if "customer" not in params:
        raise invalid_request("Missing required param: customer.", param="customer", code="parameter_missing")
    customer = ctx.get("customer", params["customer"], param="customer")
    now = ctx.now()
    method = params.get("collection_method", "charge_automatically")
    due_date, days = _due(ctx, params, method, created=now)
    currency = check_currency(params["currency"]) if params.get("currency") else default_currency(ctx, customer)
    if params.get("number"):
        _check_number_free(ctx, params["number"], None)
    invoice = shape(
        "invoice",
        id=ctx.new_id("in"),
        account_tax_ids=params.get("account_tax_ids") or None,
        auto_advance=params.get("auto_advance", False),
        automatically_finalizes_at=None,
        billing_reason="manual",
        collection_method=method,
        created=now,
        currency=currency,
        custom_fields=_custom_fields(params.get("custom_fields")),
        customer=customer["id"],
        default_payment_method=_default_pm(ctx, params.get("default_payment_method"), customer["id"]),
        default_tax_rates=tax_rates_param(ctx, params.get("default_tax_rates"), "default_tax_rates"),
        description=params.get("description"),
        due_date=due_date,
        effective_at=params.get("effective_at"),
        footer=params.get("footer"),
        issuer={"type": "self", "account": None},
        livemode=False,
        metadata=metadata_from(params),
        number=params.get("number") or None,
        payment_settings={
            "default_mandate": None, "payment_method_options": None,
            "payment_method_types": (params.get("payment_settings") or {}).get("payment_method_types") or None,
        },
        period_end=now,
        period_start=now,
        rendering={"amount_tax_display": None, "pdf": {"page_size": "auto"}, "template": None,
                   "template_version": None},
        shipping_details=params.get("shipping_details"),
        statement_descriptor=params.get("statement_descriptor"),
        status="draft",
        subtotal_excluding_tax=0,
        total_excluding_tax=0,
        total_discount_amounts=[],
        total_taxes=[],
        total_pretax_credit_amounts=[],
        webhooks_delivered_at=None,
        **customer_snapshot(customer),
        **account_snapshot(ctx),
    )
    if invoice["auto_advance"]:
        # Stripe finalizes an auto-advancing draft about an hour after creation.
        invoice["automatically_finalizes_at"] = now + 3600
    invoice.update(_lines=[], _days_until_due=days, _hosted_token=None)
    invoice["discounts"] = make_discounts(ctx, params.get("discounts"), param="discounts",
                                          customer=customer["id"], currency=currency, invoice=invoice["id"])
    ctx.insert(invoice)
    taken = []
    if params.get("pending_invoice_items_behavior") == "include":
        pending = [ii for ii in reversed(list(ctx.objects("invoiceitem")))
                   if ii["customer"] == customer["id"] and ii["invoice"] is None and ii["currency"] == currency]
        taken = [ctx.get("invoiceitem", ii["id"]) for ii in pending[:MAX_LINES]]
        for item in taken:
            attach(ctx, invoice, item)
    refresh(ctx, invoice)
    emit(ctx, "invoice.created", invoice)
    for item in taken:
        emit(ctx, "invoiceitem.updated", item, {"invoice": None})
    return answer(ctx, invoice, params, extra=include_fields(ctx, invoice))


def include_fields(ctx, invoice: dict):
    """Fields Stripe sends only when asked for with expand[] (includable)."""
    def fill(out: dict, paths: list[str]) -> None:
        if "amount_paid_off_stripe" in paths:
            out["amount_paid_off_stripe"] = invoice.get("_paid_off_stripe", 0)
    return fill


# --------------------------------------------------------------- read, delete


def get_invoice(ctx, invoice_id: str) -> dict:
    return ctx.get("invoice", invoice_id)


@route("GET", "/v1/invoices/{invoice}", params=stripe.params.InvoiceRetrieveParams)
def retrieve(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


@route("GET", "/v1/invoices", params=stripe.params.InvoiceListParams)
def list_(ctx, params):
    if "customer_account" in params:
        raise invalid_request("stripe_sandbox does not model `customer_account`.", param="customer_account")
    checks = [(k, params[k]) for k in ("customer", "status", "collection_method", "subscription") if k in params]
    due = params.get("due_date")

    def where(inv):
        return all(inv.get(k) == v for k, v in checks) and (due is None or in_range(inv["due_date"], due))

    return answer(ctx, ctx.list("invoice", params, url="/v1/invoices", where=where), params)


@route("DELETE", "/v1/invoices/{invoice}", params=stripe.params.InvoiceDeleteParams)
def delete(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    if obj["status"] != "draft":
        raise unexpected_state(
            "You can only delete draft invoices. Once an invoice has been finalized it must be voided "
            f"instead; this invoice is {obj['status']}."
        )
    # Its invoice items go with it (each with invoiceitem.deleted), and so do its lines.
    for line in lines_of(ctx, obj):
        item = ctx.get("invoiceitem", line["parent"]["invoice_item_details"]["invoice_item"])
        ctx.delete("line_item", line["id"])
        emit(ctx, "invoiceitem.deleted", item)
        ctx.delete("invoiceitem", item["id"])
    emit(ctx, "invoice.deleted", obj)
    return answer(ctx, ctx.delete("invoice", invoice), params)


# ---------------------------------------------------------------------- update


@route("POST", "/v1/invoices/{invoice}", params=stripe.params.InvoiceUpdateParams)
def update(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    _check_not_modelled(params)
    status = obj["status"]
    if status != "draft":
        for name in _DRAFT_ONLY:
            if name in params:
                raise invalid_request("Finalized invoices can't be updated in this way", param=name)
    if status in ("paid", "void"):
        for name in _OPEN_TOO:
            if name in params:
                raise invalid_request(f"You can't update `{name}` on an invoice that is {status}.", param=name)
    before = snapshot(obj)
    method = params.get("collection_method", obj["collection_method"])
    if "collection_method" in params or "days_until_due" in params or "due_date" in params:
        given = {k: params[k] for k in ("days_until_due", "due_date") if k in params}
        if method == "send_invoice" and not given and obj["collection_method"] == "send_invoice":
            given = {"due_date": obj["due_date"]} if obj["_days_until_due"] is None \
                else {"days_until_due": obj["_days_until_due"]}
        base = obj["status_transitions"]["finalized_at"] or obj["created"]
        obj["due_date"], obj["_days_until_due"] = _due(ctx, given, method, created=base)
        obj["collection_method"] = method
    if "custom_fields" in params:
        obj["custom_fields"] = _custom_fields(params["custom_fields"])
    if "default_tax_rates" in params:
        obj["default_tax_rates"] = tax_rates_param(ctx, params["default_tax_rates"], "default_tax_rates")
    if "discounts" in params:
        obj["discounts"] = make_discounts(ctx, params["discounts"], param="discounts", customer=obj["customer"],
                                          currency=obj["currency"], invoice=obj["id"])
    if "default_payment_method" in params:
        obj["default_payment_method"] = _default_pm(ctx, params["default_payment_method"], obj["customer"])
    if params.get("number"):
        _check_number_free(ctx, params["number"], obj["id"])
    if "auto_advance" in params and status == "draft":
        obj["automatically_finalizes_at"] = obj["created"] + 3600 if params["auto_advance"] else None
    update_fields(obj, params, ("account_tax_ids", "auto_advance", "description", "effective_at", "footer",
                                "metadata", "number", "shipping_details", "statement_descriptor"))
    if "automatically_finalizes_at" in params and status == "draft":
        obj["automatically_finalizes_at"] = params["automatically_finalizes_at"]
    refresh(ctx, obj)
    previous = changes(before, obj)
    if previous:
        emit(ctx, "invoice.updated", obj, previous)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


# ----------------------------------------------------------------------- lines


def _draft(invoice: dict, action: str) -> None:
    if invoice["status"] != "draft":
        raise unexpected_state(
            f"You can only {action} on draft invoices; invoice {invoice['id']} is {invoice['status']}."
        )


def _merge_invoice_metadata(invoice: dict, params: dict) -> None:
    if "invoice_metadata" in params:
        update_fields(invoice, {"metadata": params["invoice_metadata"]}, ("metadata",))


def _no_repeats(specs: list[dict]) -> None:
    ids = [spec["id"] for spec in specs]
    for i, line_id in enumerate(ids):
        if line_id in ids[:i]:
            raise invalid_request(f"The line item {line_id} appears more than once.", param=f"lines[{i}][id]")


def _line_of(ctx, invoice: dict, line_id: str, param: str) -> tuple[dict, dict]:
    line = ctx.find(line_id, "line_item")
    if line is None or line_id not in invoice["_lines"]:
        raise resource_missing("line_item", line_id, param=param)
    item = ctx.get("invoiceitem", line["parent"]["invoice_item_details"]["invoice_item"])
    return line, item


@route("GET", "/v1/invoices/{invoice}/lines", params=stripe.params.InvoiceListLinesParams)
def list_lines(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    # Lines come in the order they were added (not newest first).
    page = paginate(lines_of(ctx, obj), params, url=f"/v1/invoices/{invoice}/lines", object_name="line_item")
    return answer(ctx, page, params)


@route("POST", "/v1/invoices/{invoice}/add_lines", params=stripe.params.InvoiceAddLinesParams)
def add_lines(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    _draft(obj, "add lines")
    customer = ctx.get("customer", obj["customer"], param="customer")
    check_attachable(obj, customer["id"], len(params["lines"]), param="lines")
    before = snapshot(obj)
    created, assigned = [], []
    for i, spec in enumerate(params["lines"]):
        prefix = f"lines[{i}]"
        if spec.get("tax_amounts"):
            raise invalid_request("stripe_sandbox does not model manual tax_amounts; use tax_rates.",
                                  param=f"{prefix}[tax_amounts]")
        if spec.get("invoice_item"):
            item = ctx.get("invoiceitem", spec["invoice_item"], param=f"{prefix}[invoice_item]")
            if item["invoice"] is not None or item["customer"] != customer["id"] \
                    or item["currency"] != obj["currency"]:
                raise invalid_request(
                    f"The invoice item {item['id']} must be a pending item of customer {customer['id']} "
                    f"in {obj['currency']} to be added to this invoice.", param=f"{prefix}[invoice_item]",
                )
            rest = {k: v for k, v in spec.items() if k != "invoice_item"}
            previous = update_item(ctx, item, rest, prefix=prefix) if rest else {}
            assigned.append((item, dict(previous, invoice=None)))
        else:
            created.append(new_item(ctx, spec, customer=customer, invoice=obj, prefix=prefix))
    for item in created:
        ctx.insert(item)
        set_discount_owner(ctx, item["discounts"], invoice_item=item["id"])
    for item, _ in assigned + [(c, None) for c in created]:
        attach(ctx, obj, item)
    # Lines keep the request's order.
    order = [(ln_spec.get("invoice_item")) for ln_spec in params["lines"]]
    _reorder_new(obj, order, assigned, created)
    _merge_invoice_metadata(obj, params)
    refresh(ctx, obj)
    for item, previous in assigned:
        emit(ctx, "invoiceitem.updated", item, previous)
    for item in created:
        emit(ctx, "invoiceitem.created", item)
    emit(ctx, "invoice.updated", obj, changes(before, obj))
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


def _reorder_new(invoice: dict, order: list, assigned: list, created: list) -> None:
    n = len(assigned) + len(created)
    if not n:
        return
    by_item = {item["id"]: item["_line"] for item, _ in assigned}
    new_created = iter(item["_line"] for item in created)
    invoice["_lines"][-n:] = [by_item[iid] if iid else next(new_created) for iid in order]


@route("POST", "/v1/invoices/{invoice}/remove_lines", params=stripe.params.InvoiceRemoveLinesParams)
def remove_lines(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    _draft(obj, "remove lines")
    _no_repeats(params["lines"])
    targets = []
    for i, spec in enumerate(params["lines"]):
        _, item = _line_of(ctx, obj, spec["id"], f"lines[{i}][id]")
        targets.append((item, spec["behavior"]))
    before = snapshot(obj)
    for item, behavior in targets:
        if behavior == "delete":
            emit(ctx, "invoiceitem.deleted", item)
            detach(ctx, obj, item)
            ctx.delete("invoiceitem", item["id"])
        else:
            detach(ctx, obj, item)
            emit(ctx, "invoiceitem.updated", item, {"invoice": obj["id"]})
    _merge_invoice_metadata(obj, params)
    refresh(ctx, obj)
    emit(ctx, "invoice.updated", obj, changes(before, obj))
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


def _update_lines(ctx, obj: dict, specs: list[dict], *, prefix_of) -> None:
    _no_repeats(specs)
    items = []
    for i, spec in enumerate(specs):
        if spec.get("tax_amounts"):
            where = prefix_of(i)
            raise invalid_request("stripe_sandbox does not model manual tax_amounts; use tax_rates.",
                                  param=f"{where}[tax_amounts]" if where else "tax_amounts")
        _, item = _line_of(ctx, obj, spec["id"], f"{prefix_of(i)}[id]")
        items.append(item)
    results = []
    for i, (spec, item) in enumerate(zip(specs, items)):
        rest = {k: v for k, v in spec.items() if k not in ("id", "expand")}
        results.append((item, update_item(ctx, item, rest, prefix=prefix_of(i))))
    for item, _ in results:
        ctx.save(item)
        set_discount_owner(ctx, item["discounts"], invoice_item=item["id"])
    for item, previous in results:
        if previous:
            emit(ctx, "invoiceitem.updated", item, previous)


@route("POST", "/v1/invoices/{invoice}/update_lines", params=stripe.params.InvoiceUpdateLinesParams)
def update_lines(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    _draft(obj, "update lines")
    before = snapshot(obj)
    _update_lines(ctx, obj, params["lines"], prefix_of=lambda i: f"lines[{i}]")
    _merge_invoice_metadata(obj, params)
    refresh(ctx, obj)
    emit(ctx, "invoice.updated", obj, changes(before, obj))
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


@route("POST", "/v1/invoices/{invoice}/lines/{line_item_id}", params=stripe.params.InvoiceLineItemUpdateParams)
def update_line(ctx, params, invoice, line_item_id):
    obj = get_invoice(ctx, invoice)
    _draft(obj, "update lines")
    before = snapshot(obj)
    _update_lines(ctx, obj, [dict(params, id=line_item_id)], prefix_of=lambda i: "")
    refresh(ctx, obj)
    previous = changes(before, obj)
    if previous:
        emit(ctx, "invoice.updated", obj, previous)
    return answer(ctx, ctx.find(line_item_id, "line_item"), params)
