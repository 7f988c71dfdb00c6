"""Marking an invoice paid outside Stripe (bank transfer, cash, cheque...): what staff say
(date, method, reference) and what Stripe counts.

The amount recorded is what Stripe says remains on the invoice when it is marked, read
through the gateway just before: a payment Stripe had and the app missed (a partial card
payment whose events never came) is not counted twice. Stripe is then told
(`paid_out_of_band`), and the webhooks' reconcile keeps the row in line with Stripe's
objects afterwards (`webhooks.apply.payment_record_out_of_band`). Called by
`invoicing.actions.invoice_action` (the staff page and the admin); the form is in
`invoicing.forms`.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from finance.models import Invoice, InvoiceStatus, OutOfBandMethod
from finance.money import from_minor

from ..webhooks import apply as payments
from ..gateway.client import Gateway


@dataclass(frozen=True)
class OutOfBandPayment:
    paid_on: datetime.date
    method: str  # OutOfBandMethod
    reference: str

    def problems(self) -> list[str]:
        """What is wrong with it, as messages for staff (the form checks the same)."""
        found = []
        if not isinstance(self.paid_on, datetime.date):
            found.append("Give the date it was paid.")
        elif self.paid_on > timezone.localdate():
            found.append("The payment date cannot be in the future.")
        if self.method not in OutOfBandMethod.values:
            found.append("Choose how it was paid: " + ", ".join(str(label) for label in OutOfBandMethod.labels) + ".")
        if not (self.reference or "").strip():
            found.append("Give the payment's reference (bank reference, receipt or cheque number).")
        elif len(self.reference) > 200:
            found.append("The reference is longer than 200 characters.")
        return found

    @property
    def paid_at(self) -> datetime.datetime:
        return timezone.make_aware(datetime.datetime.combine(self.paid_on, datetime.time.min))


class OutOfBandRefused(Exception):
    """Not marked; `message` is for staff."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def invoice_pay_out_of_band(*, invoice: Invoice, gw: Gateway, account: str, details: OutOfBandPayment | None,
                            idempotency_key: str, apply_remote) -> str:
    """Read what Stripe says remains, tell Stripe the invoice was paid outside it, and
    record that amount as one payment with staff's date, method and reference.
    `apply_remote(invoice, remote)` writes Stripe's answer onto the invoice (the push's
    `_update`, so statuses move forward the one way they always do)."""
    if details is None:
        raise OutOfBandRefused("Say when and how it was paid, and its reference, to mark it paid outside Stripe.")
    problems = details.problems()
    if problems:
        raise OutOfBandRefused(" ".join(problems))
    before = gw.invoice_fetch(account=account, invoice_id=invoice.stripe_invoice_id)
    if before.status not in ("open", "uncollectible"):
        apply_remote(invoice, before)
        raise OutOfBandRefused(f"Stripe has {invoice.number} {before.status}: it cannot be marked paid outside Stripe.")
    if before.currency.upper() != invoice.currency:
        raise OutOfBandRefused(f"Stripe's invoice is in {before.currency.upper()}, not {invoice.currency}.")
    amount = from_minor(before.amount_remaining, invoice.currency)
    remote = gw.invoice_pay(account=account, invoice_id=invoice.stripe_invoice_id, idempotency_key=idempotency_key,
                            paid_out_of_band=True)
    with transaction.atomic():
        apply_remote(invoice, remote)
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status == InvoiceStatus.PAID:
            payments.payment_record_out_of_band(invoice=locked, amount=amount, paid_at=details.paid_at,
                                                out_of_band_method=details.method, reference=details.reference.strip())
    return (f"{invoice.number} is paid (outside Stripe, {amount} {invoice.currency} as Stripe had it remaining); "
            "Stripe was told.")
