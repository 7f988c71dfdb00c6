"""Billables, invoices (with their line snapshots), payments and refunds.

Money is `Decimal` here (3 decimal places hold every currency Stripe supports, KWD/BHD
included); conversion to Stripe's integer minor units happens only in `finance.money`.
Status transitions are written once, next to each status (`*_TRANSITIONS`), and only
move forward: paid and void are final.
"""
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.models import BusinessOwned, Contact, Opportunity, Ticket, currency_validator
from finance.money import format_money
from services.models import Service

MONEY = {"max_digits": 18, "decimal_places": 3}


def money_field(**kwargs):
    return models.DecimalField(default=Decimal("0"), **MONEY, **kwargs)


class BillableStatus(models.TextChoices):
    UNBILLED = "unbilled", "Unbilled"
    INVOICED = "invoiced", "Invoiced"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


BILLABLE_TRANSITIONS = {
    BillableStatus.UNBILLED: {BillableStatus.INVOICED, BillableStatus.VOID},
    # back to unbilled when its invoice is voided or its draft deleted
    BillableStatus.INVOICED: {BillableStatus.PAID, BillableStatus.UNBILLED, BillableStatus.VOID},
    BillableStatus.PAID: set(),
    BillableStatus.VOID: set(),
}


class LineType(models.TextChoices):
    CHARGE = "charge", "Charge"
    CREDIT = "credit", "Credit"


class Billable(BusinessOwned):
    bill_to = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="billables")
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.PROTECT, related_name="billables")
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.PROTECT, related_name="billables")
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT, related_name="billables")
    description = models.CharField(max_length=500, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("1"), validators=[MinValueValidator(Decimal("0.001"))])
    unit_price = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Leave empty to use the service's list price in this currency; set it for a negotiated rate.",
    )
    uses_list_price = models.BooleanField(default=False, editable=False)
    currency = models.CharField(max_length=3, validators=[currency_validator])
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(100)])
    discount_amount = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(0)])
    vat_rate = models.DecimalField("VAT rate (%)", max_digits=5, decimal_places=2, default=Decimal("0"), validators=[MinValueValidator(0), MaxValueValidator(100)])
    prices_include_vat = models.BooleanField(default=False)
    line_type = models.CharField(max_length=8, choices=LineType.choices, default=LineType.CHARGE)
    status = models.CharField(max_length=10, choices=BillableStatus.choices, default=BillableStatus.UNBILLED, db_index=True)
    service_date = models.DateField(null=True, blank=True)
    invoice = models.ForeignKey("Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="billables", editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["business", "status", "currency"])]
        constraints = [
            models.CheckConstraint(
                condition=~(Q(opportunity__isnull=False) & Q(ticket__isnull=False)),
                name="billable_one_source",
                violation_error_message="A billable comes from an opportunity or a ticket, not both.",
            ),
            models.CheckConstraint(
                condition=~(Q(discount_percent__isnull=False) & Q(discount_amount__isnull=False)),
                name="billable_one_discount_kind",
                violation_error_message="Give a discount as a percent or as an amount, not both.",
            ),
        ]

    def __str__(self):
        return self.description or (self.service.name if self.service_id else f"Billable {self.pk}")

    def clean(self):
        self.check_same_business(
            bill_to=getattr(self, "bill_to", None), opportunity=self.opportunity,
            ticket=self.ticket, service=self.service,
        )
        if self.currency:
            self.currency = self.currency.upper()
        if self.unit_price is None:
            price = self.service.prices.filter(currency=self.currency).first() if self.service_id else None
            if price is None:
                raise ValidationError({"unit_price": "Enter a unit price: there is no list price in this currency."})
            self.unit_price = price.amount
            self.uses_list_price = True
        elif self.service_id:
            price = self.service.prices.filter(currency=self.currency).first()
            self.uses_list_price = price is not None and price.amount == self.unit_price
        if not self.description and self.service_id:
            self.description = self.service.name

    @property
    def amounts(self):
        from finance.totals import billable_amounts

        return billable_amounts(self)


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


# Stripe's invoice state machine (docs: "Invoice lifecycle").
INVOICE_TRANSITIONS = {
    InvoiceStatus.DRAFT: {InvoiceStatus.OPEN, InvoiceStatus.VOID},
    InvoiceStatus.OPEN: {InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE},
    InvoiceStatus.UNCOLLECTIBLE: {InvoiceStatus.PAID, InvoiceStatus.VOID},
    InvoiceStatus.PAID: set(),
    InvoiceStatus.VOID: set(),
}


def invoice_status_path(current: str, target: str) -> list[str] | None:
    """THE forward-only rule for an invoice's status, used by the push and the webhooks
    alike: the forward steps from `current` to `target` ([] when equal), or None when the
    target is behind (a stale object: ignore it). Stripe may skip a step we model: a draft
    can be paid at finalizing (nothing due: a 100 % discount, a customer credit balance),
    i.e. draft -> open -> paid."""
    if current == target:
        return []
    queue, seen = [(current, [])], {current}
    while queue:
        status, path = queue.pop(0)
        for nxt in sorted(INVOICE_TRANSITIONS[status]):
            if nxt == target:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, [*path, nxt]))
    return None


class CollectionMethod(models.TextChoices):
    SEND_INVOICE = "send_invoice", "Send invoice"
    CHARGE_AUTOMATICALLY = "charge_automatically", "Charge automatically"


# --- invoice push to Stripe (issue 6) ---
class InvoicePushStatus(models.TextChoices):
    """Where the CRM invoice is in its push to Stripe, beside Stripe's own `status`.

    pending: built locally, nothing sent yet (or awaiting approval); pushing: a worker
    owns it (saved BEFORE any Stripe call, so a crash leaves a trace that recovery
    follows); pushed: created, lines added, finalized, sent (or charged); failed: a
    Stripe error stopped it (message in `last_error`, Retry offered); mismatch: Stripe's
    totals differ from the CRM's (differences in `push_mismatch`), stopped before sending.
    """
    PENDING = "pending", "Not sent yet"
    PUSHING = "pushing", "Sending to Stripe"
    PUSHED = "pushed", "In Stripe"
    FAILED = "failed", "Failed"
    MISMATCH = "mismatch", "Totals differ from Stripe"


class InvoicePushStep(models.TextChoices):
    """The last push step known done (recovery re-reads Stripe before trusting it)."""
    NONE = "", "Nothing yet"
    CREATED = "created", "Draft created"
    LINES = "lines", "Lines added"
    FINALIZED = "finalized", "Finalized"
    SENT = "sent", "Sent or charged"


class Invoice(BusinessOwned):
    number = models.CharField(max_length=40, help_text="Local invoice number.")
    bill_to = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="invoices")
    currency = models.CharField(max_length=3, validators=[currency_validator])
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, db_index=True)
    collection_method = models.CharField(max_length=24, choices=CollectionMethod.choices, default=CollectionMethod.SEND_INVOICE)
    due_date = models.DateField(null=True, blank=True)
    subtotal = money_field()
    discount_total = money_field()
    tax_total = money_field()
    total = money_field()
    amount_paid = money_field()
    amount_remaining = money_field()
    hosted_invoice_url = models.URLField(max_length=500, blank=True)
    invoice_pdf_url = models.URLField("PDF URL", max_length=500, blank=True)
    stripe_invoice_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_number = models.CharField(max_length=64, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    # Refunds never change Stripe's amount_paid (a refunded invoice stays "paid"); the app
    # keeps what was given back beside it, so net paid = amount_paid - amount_refunded.
    amount_refunded = money_field()
    # A chargeback on one of its payments (charge.dispute.created): staff must respond.
    disputed = models.BooleanField(default=False, db_index=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # --- push to Stripe (issue 6): see InvoicePushStatus ---
    push_status = models.CharField(max_length=10, choices=InvoicePushStatus.choices, default=InvoicePushStatus.PENDING, db_index=True)
    push_step = models.CharField(max_length=10, choices=InvoicePushStep.choices, default=InvoicePushStep.NONE, blank=True, editable=False)
    push_attempts = models.PositiveIntegerField(default=0, editable=False)
    # Bumped only when Stripe says the invoice it had for us is gone (a draft deleted in
    # Stripe): part of the push's idempotency keys and metadata key, so the next attempt
    # makes a new Stripe invoice instead of replaying the answers about the deleted one.
    push_generation = models.PositiveIntegerField(default=0, editable=False)
    push_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    push_mismatch = models.JSONField(default=dict, blank=True, editable=False, help_text="CRM vs Stripe totals (minor units) when they differ.")
    approved = models.BooleanField(default=False, help_text="Needed before sending when the business sends only approved invoices.")
    po_number = models.CharField("PO number", max_length=100, blank=True)
    days_until_due = models.PositiveSmallIntegerField(null=True, blank=True)
    footer = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["business", "number"], name="uniq_invoice_number_per_business")]
        # The Invoices page, money owed and aging (issue 14): open invoices by due date,
        # and the list's default order.
        indexes = [
            models.Index(fields=["business", "status", "due_date"], name="invoice_biz_status_due"),
            models.Index(fields=["business", "created_at"], name="invoice_biz_created"),
        ]

    def __str__(self):
        return self.number

    def can_transition(self, new_status):
        """Whether the status may move to `new_status` (forward, possibly over skipped
        steps, or staying put): `invoice_status_path`, the one rule."""
        return invoice_status_path(self.status, new_status) is not None

    @property
    def net_paid(self):
        return self.amount_paid - self.amount_refunded

    def clean(self):
        self.check_same_business(bill_to=getattr(self, "bill_to", None))
        if self.currency:
            self.currency = self.currency.upper()


class InvoiceLine(BusinessOwned):
    """A snapshot of a billable as it was invoiced: later edits never change an invoice."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    billable = models.ForeignKey(Billable, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoice_lines")
    position = models.PositiveIntegerField(default=0)
    service = models.ForeignKey(Service, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price = models.DecimalField(**MONEY)
    discount_amount = money_field()
    vat_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    prices_include_vat = models.BooleanField(default=False)
    line_type = models.CharField(max_length=8, choices=LineType.choices, default=LineType.CHARGE)
    subtotal = money_field()
    tax = money_field()
    total = money_field()
    stripe_line_id = models.CharField(max_length=255, blank=True)
    # --- push to Stripe (issue 6): what the line was priced with ---
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    uses_list_price = models.BooleanField(default=False)

    class Meta:
        ordering = ["invoice", "position"]

    def __str__(self):
        # The admin shows this wherever a line is named (inlines, deletes, the log).
        number = self.invoice.number if self.invoice_id else "no invoice"
        return f"Line {self.position} of {number}"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class PaymentMethod(models.TextChoices):
    CARD = "card", "Card"
    BANK = "bank", "Bank debit / transfer"
    OUT_OF_BAND = "out_of_band", "Paid outside Stripe"
    OTHER = "other", "Other"


class OutOfBandMethod(models.TextChoices):
    """How a payment made outside Stripe came in (staff say so when they mark it)."""

    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CASH = "cash", "Cash"
    CHEQUE = "cheque", "Cheque"
    OTHER = "other", "Other"


class Payment(BusinessOwned):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    currency = models.CharField(max_length=3, validators=[currency_validator])
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True)
    method = models.CharField(max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.CARD)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    fee = money_field()
    net = money_field()
    amount_refunded = money_field()
    paid_at = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_charge_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # A payment made outside Stripe: how, and the bank or receipt reference staff gave.
    out_of_band_method = models.CharField(max_length=16, choices=OutOfBandMethod.choices, blank=True)
    reference = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Payment of {format_money(self.amount, self.currency)} ({self.get_status_display().lower()})"

    def clean(self):
        self.check_same_business(invoice=getattr(self, "invoice", None))


class Refund(BusinessOwned):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = money_field()
    currency = models.CharField(max_length=3, validators=[currency_validator])
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, default="succeeded")
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Refund of {format_money(self.amount, self.currency)}"

    def clean(self):
        self.check_same_business(payment=getattr(self, "payment", None))
