"""An invoice's life after its draft: finalize, send, pay, void,
mark_uncollectible, and the invoice payments that record what paid it
(docs.stripe.com/invoicing/overview#invoice-statuses).

    draft --finalize--> open --pay--> paid
    draft --delete--> (gone)        open --void--> void
    open --mark_uncollectible--> uncollectible --pay--> paid, --void--> void

paid and void are final. "Stripe automatically finalizes drafts before sending and
attempting payment on invoices" (API reference, Finalize an invoice), so `send` and
`pay` on a draft finalize it first. Anything else is a 400.

Finalizing fixes the totals, applies the customer's balance (a credit lowers
`amount_due`, a debt raises it, and the customer's balance becomes the invoice's
`ending_balance`), numbers the invoice `<customer invoice_prefix>-<0001>` from the
customer's `next_invoice_sequence`, and links the hosted page
`{base}/hosted/invoices/{token}` (served by hosted.py; the token is the invoice's
internal `_hosted_token`). An invoice with nothing due is paid at once.

Automatic collection (`auto_advance`) is recorded, not run: the sandbox has no
scheduler, so an auto-advancing draft is not finalized an hour later and failed
payments are not retried. `next_payment_attempt` and `automatically_finalizes_at`
show when Stripe would act.

Payments: `pay` charges a card through payments.collect_payment and records the
result with `invoice_apply_payment`, or records a decline with
`invoice_record_failed_attempt` and answers Stripe's 402 card error.
`paid_out_of_band=true` marks the invoice paid without a payment; the amount counts
in `amount_paid` (basil and later) and in `amount_paid_off_stripe` (required in the spec).
"""

from __future__ import annotations

import stripe

from ..core import Response, random_token, route
from ..errors import StripeError, invalid_request
from ..schema import shape
from .billing_common import answer, base_url, emit, public, unexpected_state
from .billing_invoices import DAY, account_snapshot, customer_snapshot, get_invoice, include_fields
from .billing_lines import changes, refresh, snapshot

NO_PAYMENT_METHOD = (
    "This customer has no attached payment source or default payment method. Please consider adding a "
    "default payment method. For more information, visit "
    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
)


# -------------------------------------------------------------------- finalize


def finalize(ctx, invoice: dict, *, auto_advance: bool | None = None) -> None:
    if invoice["status"] != "draft":
        raise unexpected_state("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
    found = ctx.find(invoice["customer"], "customer")
    if found is None or found.get("deleted"):
        raise invalid_request(f"The customer {invoice['customer']} of this invoice was deleted: it can't be finalized.")
    customer = ctx.get("customer", invoice["customer"])
    now = ctx.now()
    if invoice["collection_method"] == "send_invoice":
        days = invoice["_days_until_due"]
        if days is not None:
            invoice_due = now + days * DAY
        else:
            invoice_due = invoice["due_date"]
            if invoice_due < now:
                raise invalid_request("The invoice's due_date is in the past: update it before finalizing.",
                                      param="due_date")
    before = snapshot(invoice)
    if auto_advance is not None:
        invoice["auto_advance"] = auto_advance
    refresh(ctx, invoice)  # the last draft computation is the final one

    balance = customer.get("balance") or 0
    net = invoice["total"] + balance
    invoice["starting_balance"] = balance
    invoice["ending_balance"] = min(net, 0)
    invoice["amount_due"] = invoice["amount_remaining"] = max(net, 0)
    if customer.get("balance", 0) != invoice["ending_balance"]:
        customer["balance"] = invoice["ending_balance"]
        ctx.save(customer)
        emit(ctx, "customer.updated", customer, {"balance": balance})

    if not invoice["number"]:
        seq = customer.get("next_invoice_sequence") or 1
        number = f"{customer.get('invoice_prefix') or 'INV'}-{seq:04d}"
        customer["next_invoice_sequence"] = seq + 1
        ctx.save(customer)
        invoice["number"] = number
    token = random_token(40)
    base = base_url(ctx)
    charge_auto = invoice["collection_method"] == "charge_automatically"
    invoice.update(
        _hosted_token=token,
        hosted_invoice_url=f"{base}/hosted/invoices/{token}",
        invoice_pdf=f"{base}/hosted/invoices/{token}/pdf",
        status="open",
        effective_at=invoice["effective_at"] or now,
        automatically_finalizes_at=None,
        webhooks_delivered_at=now,
        period_end=now,
        # Finalizing a send_invoice invoice counts as its attempt (Stripe's example
        # response shows attempted=true); a card is attempted when charged.
        attempted=not charge_auto,
        next_payment_attempt=now + 3600 if charge_auto and invoice["auto_advance"] and invoice["amount_due"] else None,
        **customer_snapshot(customer),
        **account_snapshot(ctx),
    )
    if not charge_auto:
        invoice["due_date"] = invoice_due
    invoice["status_transitions"]["finalized_at"] = now
    invoice["last_finalization_error"] = None
    ctx.save(invoice)
    emit(ctx, "invoice.finalized", invoice)
    paid = invoice["amount_due"] == 0
    if paid:
        _mark_paid(invoice, now)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    if paid:
        emit(ctx, "invoice.paid", invoice)
        emit(ctx, "invoice.payment_succeeded", invoice)
    elif invoice["auto_advance"] and not charge_auto:
        # Auto-advancing send_invoice invoices are emailed once finalized.
        emit(ctx, "invoice.sent", invoice)


def _mark_paid(invoice: dict, now: int) -> None:
    invoice["status"] = "paid"
    invoice["status_transitions"]["paid_at"] = now
    invoice["amount_remaining"] = 0
    invoice["next_payment_attempt"] = None


@route("POST", "/v1/invoices/{invoice}/finalize", params=stripe.params.InvoiceFinalizeInvoiceParams)
def finalize_route(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    finalize(ctx, obj, auto_advance=params.get("auto_advance"))
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


# ------------------------------------------------------------------------ send


@route("POST", "/v1/invoices/{invoice}/send", params=stripe.params.InvoiceSendInvoiceParams)
def send(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    if obj["collection_method"] != "send_invoice":
        raise invalid_request(
            "You can only manually send an invoice if its collection method is 'send_invoice'."
        )
    if obj["status"] == "void":
        raise unexpected_state("You can't send an invoice that has been voided.")
    if obj["status"] == "draft":
        finalize(ctx, obj)
    # Test mode sends no email, "despite sending an invoice.sent event" (API reference).
    emit(ctx, "invoice.sent", obj)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


# ------------------------------------------------------------------------- pay


@route("POST", "/v1/invoices/{invoice}/pay", params=stripe.params.InvoicePayParams)
def pay(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    if obj["status"] == "paid":
        raise unexpected_state("Invoice is already paid")
    if obj["status"] == "void":
        raise unexpected_state("This invoice has been voided and can no longer be paid.")
    if params.get("paid_out_of_band") and (params.get("payment_method") or params.get("source")):
        raise invalid_request("You cannot pass payment_method or source with paid_out_of_band=true.",
                              param="paid_out_of_band")
    for payment in obj["payments"]["data"]:
        pending = ctx.find(payment["payment"].get("payment_intent"), "payment_intent")
        if payment["status"] == "open" and pending and pending["status"] == "processing":
            raise unexpected_state(f"This invoice has a payment processing ({pending['id']}); wait for it to "
                                   "succeed or fail before paying again.")
    finalized_now = obj["status"] == "draft"
    if finalized_now:
        finalize(ctx, obj)
        if obj["status"] == "paid":
            return answer(ctx, obj, params, extra=include_fields(ctx, obj))
    if params.get("paid_out_of_band"):
        _pay_out_of_band(ctx, obj)
        return answer(ctx, obj, params, extra=include_fields(ctx, obj))
    customer = ctx.get("customer", obj["customer"], param="customer")
    pm_id = (params.get("payment_method") or params.get("source") or obj["default_payment_method"]
             or (customer.get("invoice_settings") or {}).get("default_payment_method"))
    try:
        if not pm_id:
            raise invalid_request(NO_PAYMENT_METHOD)
        from .payments import collect_payment  # payments imports billing lazily too

        pi, charge = collect_payment(
            ctx, customer=customer["id"], amount=obj["amount_remaining"], currency=obj["currency"],
            payment_method=pm_id, invoice_id=obj["id"], description=f"Payment for Invoice {obj['number']}",
            metadata={},
        )
    except StripeError as exc:
        if exc.status == 402:
            pi = exc.extra.get("payment_intent") or {}
            invoice_record_failed_attempt(ctx, obj["id"], payment_intent=pi,
                                          error=pi.get("last_payment_error") or exc.body(ctx.request_id)["error"])
        elif not finalized_now:
            raise
        # Answered, not raised, so that the events of what did happen (the attempt,
        # or the finalization of a draft) are published with the error.
        return Response.json(exc.body(ctx.request_id), exc.status, exc.headers)
    if pi["status"] == "processing":  # a bank debit: the invoice stays open until it settles
        invoice_record_processing(ctx, obj["id"], payment_intent=pi)
    else:
        invoice_apply_payment(ctx, obj["id"], payment_intent=pi, charge=charge)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


def _pay_out_of_band(ctx, invoice: dict) -> None:
    before = snapshot(invoice)
    amount = invoice["amount_remaining"]
    invoice["amount_paid"] += amount
    invoice["_paid_off_stripe"] = invoice.get("_paid_off_stripe", 0) + amount
    invoice["amount_paid_off_stripe"] = invoice["_paid_off_stripe"]
    invoice["attempted"] = True
    _mark_paid(invoice, ctx.now())
    ctx.save(invoice)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    emit(ctx, "invoice.paid", invoice)


# --------------------------------------------------- interface with payments.py


def invoice_get(ctx, invoice_id: str) -> dict:
    """The invoice (this account's; 404 resource_missing otherwise), as a copy
    without internal fields."""
    return public(get_invoice(ctx, invoice_id))


def invoice_apply_payment(ctx, invoice_id: str, *, payment_intent: dict, charge: dict | None) -> dict:
    """Record a succeeded PaymentIntent as a payment of an open or uncollectible
    invoice: an invoice payment (`inpay_...`), amount_paid/amount_remaining, and,
    once nothing remains, status paid. Emits invoice.updated, then (when paid)
    invoice.paid and invoice.payment_succeeded, then invoice_payment.paid. Applying
    the same PaymentIntent twice changes nothing. Returns the invoice (a copy)."""
    invoice = get_invoice(ctx, invoice_id)
    pi_id = payment_intent["id"]
    if any(p["payment"]["payment_intent"] == pi_id and p["status"] == "paid" for p in invoice["payments"]["data"]):
        return public(invoice)
    if invoice["status"] == "paid":
        raise unexpected_state("Invoice is already paid")
    if invoice["status"] not in ("open", "uncollectible"):
        raise unexpected_state(
            f"You can only pay an open or uncollectible invoice; this invoice is {invoice['status']}."
        )
    if payment_intent.get("status") not in (None, "succeeded"):
        raise invalid_request(f"The PaymentIntent {pi_id} has not succeeded (status {payment_intent.get('status')}).")
    amount = payment_intent.get("amount_received") or payment_intent["amount"]
    now = ctx.now()
    before = snapshot(invoice)
    # An earlier failed attempt of the same PaymentIntent is that payment, now paid.
    invoice["payments"]["data"] = [p for p in invoice["payments"]["data"] if p["payment"]["payment_intent"] != pi_id]
    payment = _invoice_payment(ctx, invoice, payment_intent, status="paid", amount_paid=amount)
    ctx.insert(payment)
    invoice["payments"]["data"].append(dict(payment))
    invoice["amount_paid"] += amount
    invoice["amount_remaining"] = max(invoice["amount_due"] - invoice["amount_paid"], 0)
    invoice["amount_overpaid"] = max(invoice["amount_paid"] - invoice["amount_due"], 0)
    invoice["attempted"] = True
    # "Any payment attempt counts as the first attempt, and subsequently only
    # automatic retries increment the attempt count" (attempt_count, API reference).
    invoice["attempt_count"] = max(invoice["attempt_count"], 1)
    paid = invoice["amount_remaining"] == 0
    if paid:
        _mark_paid(invoice, now)
    ctx.save(invoice)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    if paid:
        emit(ctx, "invoice.paid", invoice)
        emit(ctx, "invoice.payment_succeeded", invoice)
    emit(ctx, "invoice_payment.paid", payment)
    return public(invoice)


def _invoice_payment(ctx, invoice: dict, payment_intent: dict, *, status: str, amount_paid: int) -> dict:
    now = ctx.now()
    return shape(
        "invoice_payment",
        id=ctx.new_id("inpay"),
        amount_paid=amount_paid,
        amount_requested=payment_intent["amount"],
        created=now,
        currency=invoice["currency"],
        invoice=invoice["id"],
        is_default=not invoice["payments"]["data"],
        livemode=False,
        payment={"type": "payment_intent", "payment_intent": payment_intent["id"]},
        status=status,
        status_transitions={"paid_at": now if status == "paid" else None, "canceled_at": None},
    )


def invoice_record_processing(ctx, invoice_id: str, *, payment_intent: dict) -> dict:
    """Record a payment that is processing (a bank debit): the invoice stays open with
    an `open` invoice payment of the PaymentIntent (paid or failed when the debit
    settles), attempted=true. Emits invoice.updated. Returns the invoice (a copy)."""
    invoice = get_invoice(ctx, invoice_id)
    before = snapshot(invoice)
    invoice["attempted"] = True
    invoice["attempt_count"] = max(invoice["attempt_count"], 1)
    pi_id = payment_intent["id"]
    if not any(p["payment"]["payment_intent"] == pi_id for p in invoice["payments"]["data"]):
        attempt = _invoice_payment(ctx, invoice, payment_intent, status="open", amount_paid=0)
        ctx.insert(attempt)
        invoice["payments"]["data"].append(dict(attempt))
    ctx.save(invoice)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    return public(invoice)


def invoice_record_failed_attempt(ctx, invoice_id: str, *, payment_intent: dict, error: dict) -> dict:
    """Record a declined payment attempt: attempted=true, attempt_count counts it
    (see invoice_apply_payment), last_finalization_error untouched. Emits
    invoice.payment_failed, then invoice.updated. Returns the invoice (a copy)."""
    invoice = get_invoice(ctx, invoice_id)
    before = snapshot(invoice)
    invoice["attempted"] = True
    invoice["attempt_count"] = max(invoice["attempt_count"], 1)
    # The attempt stays on the invoice as an `open` invoice payment of its PaymentIntent:
    # with invoices no longer naming a payment_intent (API 2025-03-31), this is how a
    # failed PaymentIntent is traced to its invoice.
    pi_id = payment_intent["id"]
    if not any(p["payment"]["payment_intent"] == pi_id for p in invoice["payments"]["data"]):
        attempt = _invoice_payment(ctx, invoice, payment_intent, status="open", amount_paid=0)
        ctx.insert(attempt)
        invoice["payments"]["data"].append(dict(attempt))
    ctx.save(invoice)
    emit(ctx, "invoice.payment_failed", invoice)
    emit(ctx, "invoice.updated", invoice, changes(before, invoice))
    return public(invoice)


# ---------------------------------------------------- void, mark_uncollectible


@route("POST", "/v1/invoices/{invoice}/void", params=stripe.params.InvoiceVoidInvoiceParams)
def void(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    if obj["status"] not in ("open", "uncollectible"):
        # Stripe's answer for a draft or a paid invoice.
        raise unexpected_state("You can only pass in open invoices. This invoice isn't open.")
    before = snapshot(obj)
    now = ctx.now()
    obj["status"] = "void"
    obj["status_transitions"]["voided_at"] = now
    obj["next_payment_attempt"] = None
    # A balance the invoice consumed goes back to the customer.
    applied = (obj["starting_balance"] or 0) - (obj["ending_balance"] or 0)
    found = ctx.find(obj["customer"], "customer")
    if applied and found is not None and not found.get("deleted"):
        customer = ctx.get("customer", obj["customer"])
        old = customer.get("balance") or 0
        customer["balance"] = old + applied
        ctx.save(customer)
        emit(ctx, "customer.updated", customer, {"balance": old})
    ctx.save(obj)
    emit(ctx, "invoice.updated", obj, changes(before, obj))
    emit(ctx, "invoice.voided", obj)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


@route("POST", "/v1/invoices/{invoice}/mark_uncollectible", params=stripe.params.InvoiceMarkUncollectibleParams)
def mark_uncollectible(ctx, params, invoice):
    obj = get_invoice(ctx, invoice)
    if obj["status"] != "open":
        raise unexpected_state(
            f"You can only mark open invoices as uncollectible. This invoice is {obj['status']}."
        )
    before = snapshot(obj)
    obj["status"] = "uncollectible"
    obj["status_transitions"]["marked_uncollectible_at"] = ctx.now()
    obj["next_payment_attempt"] = None
    ctx.save(obj)
    emit(ctx, "invoice.updated", obj, changes(before, obj))
    emit(ctx, "invoice.marked_uncollectible", obj)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


# ------------------------------------------------------------ invoice payments


@route("POST", "/v1/invoices/{invoice}/attach_payment", params=stripe.params.InvoiceAttachPaymentParams)
def attach_payment(ctx, params, invoice):
    """Attach a succeeded PaymentIntent made outside the invoice as its payment."""
    obj = get_invoice(ctx, invoice)
    if "payment_record" in params:
        raise invalid_request("stripe_sandbox does not model payment records.", param="payment_record")
    if not params.get("payment_intent"):
        raise invalid_request("Missing required param: payment_intent.", param="payment_intent",
                              code="parameter_missing")
    pi = ctx.get("payment_intent", params["payment_intent"], param="payment_intent")
    if pi.get("customer") not in (None, obj["customer"]):
        raise invalid_request(f"The PaymentIntent {pi['id']} belongs to another customer.", param="payment_intent")
    invoice_apply_payment(ctx, obj["id"], payment_intent=pi, charge=None)
    return answer(ctx, obj, params, extra=include_fields(ctx, obj))


@route("GET", "/v1/invoice_payments/{invoice_payment}", params=stripe.params.InvoicePaymentRetrieveParams)
def retrieve_payment(ctx, params, invoice_payment):
    return answer(ctx, ctx.get("invoice_payment", invoice_payment), params)


@route("GET", "/v1/invoice_payments", params=stripe.params.InvoicePaymentListParams)
def list_payments(ctx, params):
    invoice, status, payment = params.get("invoice"), params.get("status"), params.get("payment") or {}

    def where(p):
        return (
            (invoice is None or p["invoice"] == invoice)
            and (status is None or p["status"] == status)
            and all(p["payment"].get(k) == v for k, v in payment.items())
        )

    return answer(ctx, ctx.list("invoice_payment", params, url="/v1/invoice_payments", where=where), params)
