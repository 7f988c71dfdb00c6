"""Billables, invoices (with their line snapshots), payments and refunds.

Money is `Decimal` here (3 decimal places hold every currency Stripe supports, KWD/BHD
included); conversion to Stripe's integer minor units happens only in `finance.money`.
Status transitions are written once, next to each status (`*_TRANSITIONS`), and only
move forward: paid and void are final.
"""
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from crm.models import BusinessOwned, Contact, Opportunity, Ticket
from crm.money_fields import CurrencyField, check_money
from finance.money import format_money
from services.models import Service

MONEY = {"max_digits": 18, "decimal_places": 3}


def line_rules(prefix, *, discount_amount=False):
    """Database checks of a priced line (billable, invoice line): positive quantity,
    non-negative unit price (credits are a line type, not a negative price), VAT and a
    discount percent within 0-100, and a non-negative discount amount."""
    rules = [
        ("quantity_positive", Q(quantity__gt=0), "The quantity must be more than 0."),
        ("unit_price_not_negative", Q(unit_price__isnull=True) | Q(unit_price__gte=0),
         "The unit price cannot be negative (a credit is a line type)."),
        ("vat_rate_0_100", Q(vat_rate__gte=0, vat_rate__lte=100), "The VAT rate is between 0 and 100 %."),
        ("discount_percent_0_100", Q(discount_percent__isnull=True) | Q(discount_percent__gte=0, discount_percent__lte=100),
         "The discount percent is between 0 and 100."),
    ]
    if discount_amount:
        rules.append(("discount_amount_not_negative", Q(discount_amount__isnull=True) | Q(discount_amount__gte=0),
                      "The discount amount cannot be negative."))
    return [models.CheckConstraint(condition=condition, name=f"{prefix}_{name}", violation_error_message=message)
            for name, condition, message in rules]


def money_field(**kwargs):
    return models.DecimalField(default=Decimal("0"), **MONEY, **kwargs)


# --- Stripe mode (issue 15: test and live side by side) ---------------------------------------
# Every Stripe-sourced row says which mode (test or live) it came from, as Stripe's own
# `livemode` does; None is a local-only row (a draft not sent yet). Finance screens show
# one mode at a time (finance/modes.py), never summing across modes.
def livemode_field():
    return models.BooleanField(
        "live mode", null=True, blank=True, editable=False, db_index=True,
        help_text="Stripe mode of the row: live, test, or empty for a local draft not sent to Stripe yet.")


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
    currency = CurrencyField()
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
            # The field validators' rules, kept by the database too, so bulk_create, update()
            # and another process cannot break them (issue 12, item 13).
            *line_rules("billable", discount_amount=True),
            models.CheckConstraint(
                condition=~Q(status=BillableStatus.INVOICED) | Q(invoice__isnull=False),
                name="billable_invoiced_has_invoice",
                violation_error_message="An invoiced billable is on an invoice.",
            ),
        ]

    def __str__(self):
        return self.description or (self.service.name if self.service_id else f"Billable {self.pk}")

    def clean(self):
        self.check_same_business(
            bill_to=getattr(self, "bill_to", None), opportunity=self.opportunity,
            ticket=self.ticket, service=self.service,
        )
        if self.invoice_id is not None:
            # On an invoice: its bill-to and currency are the invoice's (Invoice.check_follows_billables).
            invoice = self.invoice
            if self.bill_to_id != invoice.bill_to_id or self.currency != invoice.currency:
                raise ValidationError(f"This billable is on {invoice.number} (billed to {invoice.bill_to}, "
                                      f"in {invoice.currency}): its bill-to and currency cannot change.")
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
        # Refused where they are typed: amounts Stripe would not take (issue 12).
        check_money(self.currency, per_unit=("unit_price",), unit_price=self.unit_price,
                    discount_amount=self.discount_amount)
        self.check_line_amount()

    def check_line_amount(self):
        """The line as a whole (quantity x price, less discount, plus VAT) within Stripe's maximum."""
        from finance.money import AmountOutOfRange

        try:
            self.amounts
        except AmountOutOfRange as exc:
            raise ValidationError({"quantity": f"{str(exc)[:1].upper()}{str(exc)[1:]}."}) from None
        except (TypeError, ValueError):
            pass  # a field or the currency is invalid: its own message says so

    @property
    def amounts(self):
        from finance.totals import billable_amounts

        return billable_amounts(self)


def check_custom_fields(row) -> None:
    if not isinstance(row.custom_fields, dict):
        raise ValidationError({"custom_fields": "Custom fields are a JSON object of name: value."})


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
    currency = CurrencyField()
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
    # Set when the invoice is sent to Stripe (the mode it went to); it then stays there.
    livemode = livemode_field()
    stripe_number = models.CharField(max_length=64, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    # Refunds never change Stripe's amount_paid (a refunded invoice stays "paid"); the app
    # keeps what was given back beside it, so net paid = amount_paid - amount_refunded.
    amount_refunded = money_field()
    # Credit notes, as Stripe's invoice has them (pre_/post_payment_credit_notes_amount):
    # pre-payment ones lowered what was owed, post-payment ones were refunded, credited to
    # the customer's balance or settled outside Stripe (see CreditNote).
    credited_pre_payment = money_field()
    credited_post_payment = money_field()
    # A dispute on one of its payments that is open or was lost (its `disputes`): shown as a
    # flag. What lost disputes took back, beside refunds: net paid subtracts both.
    disputed = models.BooleanField(default=False, db_index=True)
    amount_disputed = money_field(editable=False, help_text="Taken back by lost disputes.")
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
    # Values of the business's invoice custom fields (crm.CustomFieldDefinition), checked
    # by crm.custom_fields; mapped ones go to the Stripe invoice's metadata at push.
    custom_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["business", "number"], name="uniq_invoice_number_per_business")]
        # The Invoices page, money owed and aging (issue 14): open invoices by due date,
        # and the list's default order.
        indexes = [
            models.Index(fields=["business", "status", "due_date"], name="invoice_biz_status_due"),
            models.Index(fields=["business", "created_at"], name="invoice_biz_created"),
            # The billing overview's disputed figure and integration health's failed
            # pushes pick a few rows out of every invoice: without these they scan them all.
            models.Index(fields=["business", "disputed"], name="invoice_biz_disputed"),
            models.Index(fields=["business", "push_status"], name="invoice_biz_push_status"),
        ]

    def __str__(self):
        return self.number

    def can_transition(self, new_status):
        """Whether the status may move to `new_status` (forward, possibly over skipped
        steps, or staying put): `invoice_status_path`, the one rule."""
        return invoice_status_path(self.status, new_status) is not None

    @property
    def net_paid(self):
        return self.amount_paid - self.amount_refunded - self.amount_disputed

    @property
    def credited(self):
        return self.credited_pre_payment + self.credited_post_payment

    def clean(self):
        self.check_same_business(bill_to=getattr(self, "bill_to", None))
        self.check_follows_billables()
        check_custom_fields(self)

    def check_follows_billables(self):
        """Bill-to and currency follow from the invoice's billables and lines (issue 12): once
        it has any, they are fixed, or the push would bill another customer in another
        currency than the billables say (a 100.00 USD billable sent as 100 JPY)."""
        if self.pk is None:
            return
        stored = Invoice.objects.filter(pk=self.pk).values("bill_to_id", "currency").first()
        if stored is None:
            return
        changed = {}
        if self.bill_to_id != stored["bill_to_id"]:
            changed["bill_to"] = "The bill-to of an invoice follows from its billables; it cannot change once it has them."
        if self.currency != stored["currency"]:
            changed["currency"] = "The currency of an invoice follows from its billables; it cannot change once it has them."
        if changed and (self.lines.exists() or self.billables.exists()):
            raise ValidationError(changed)


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
        constraints = [
            *line_rules("invoiceline"),
            models.UniqueConstraint(fields=["invoice", "position"], name="uniq_invoiceline_position",
                                    violation_error_message="An invoice has one line per position."),
        ]

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


METHOD_TYPE_LABELS = {
    "us_bank_account": "ACH debit", "sepa_debit": "SEPA debit", "bacs_debit": "Bacs debit",
    "acss_debit": "ACSS debit", "au_becs_debit": "BECS debit", "ach_debit": "ACH debit",
}


class OutOfBandMethod(models.TextChoices):
    """How a payment made outside Stripe came in (staff say so when they mark it)."""

    BANK_TRANSFER = "bank_transfer", "Bank transfer"
    CASH = "cash", "Cash"
    CHEQUE = "cheque", "Cheque"
    OTHER = "other", "Other"


class Payment(BusinessOwned):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = money_field()
    currency = CurrencyField()
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True)
    method = models.CharField(max_length=16, choices=PaymentMethod.choices, default=PaymentMethod.CARD)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    fee = money_field()
    net = money_field()
    amount_refunded = money_field()
    # Taken back by a lost dispute (its amount); the dispute fees are on its disputes.
    amount_disputed = money_field(editable=False)
    # Stripe's payment method type (card, us_bank_account, sepa_debit...): says which bank debit.
    method_type = models.CharField(max_length=40, blank=True, editable=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_charge_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # A payment made outside Stripe: how, and the bank or receipt reference staff gave.
    out_of_band_method = models.CharField(max_length=16, choices=OutOfBandMethod.choices, blank=True)
    reference = models.CharField(max_length=200, blank=True)
    # Values of the business's payment custom fields (crm.CustomFieldDefinition).
    custom_fields = models.JSONField(default=dict, blank=True)
    livemode = livemode_field()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Marking an invoice paid outside Stripe records one payment (a replayed click or
            # webhook records nothing more); the database keeps it so under concurrency too.
            models.UniqueConstraint(fields=["invoice"], condition=Q(method=PaymentMethod.OUT_OF_BAND),
                                    name="uniq_out_of_band_payment_per_invoice",
                                    violation_error_message="This invoice already has a payment made outside Stripe."),
        ]

    def __str__(self):
        return f"Payment of {format_money(self.amount, self.currency)} ({self.get_status_display().lower()})"

    @property
    def method_label(self) -> str:
        """The method as staff say it: ACH, SEPA, BACS... for bank debits, else the choice."""
        return METHOD_TYPE_LABELS.get(self.method_type) or self.get_method_display()

    def clean(self):
        self.check_same_business(invoice=getattr(self, "invoice", None))
        check_money(self.currency, amount=self.amount)
        check_custom_fields(self)


class Refund(BusinessOwned):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    livemode = livemode_field()
    amount = money_field()
    currency = CurrencyField()
    reason = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, default="succeeded")
    stripe_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Refund of {format_money(self.amount, self.currency)}"

    def clean(self):
        self.check_same_business(payment=getattr(self, "payment", None))
        check_money(self.currency, amount=self.amount)


# --- disputes (issue 13) ---------------------------------------------------------------
class DisputeStatus(models.TextChoices):
    """Stripe's dispute statuses (API reference, "The Dispute object")."""
    WARNING_NEEDS_RESPONSE = "warning_needs_response", "Inquiry: needs response"
    WARNING_UNDER_REVIEW = "warning_under_review", "Inquiry: under review"
    WARNING_CLOSED = "warning_closed", "Inquiry closed"
    NEEDS_RESPONSE = "needs_response", "Needs response"
    UNDER_REVIEW = "under_review", "Under review"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    PREVENTED = "prevented", "Prevented"


# Stripe's dispute lifecycle: an inquiry (warning_*) may close or escalate to a chargeback;
# a chargeback is answered (under_review) or not, then won or lost. Won, lost, prevented and
# warning_closed are final.
DISPUTE_TRANSITIONS = {
    DisputeStatus.WARNING_NEEDS_RESPONSE: {DisputeStatus.WARNING_UNDER_REVIEW, DisputeStatus.WARNING_CLOSED,
                                           DisputeStatus.NEEDS_RESPONSE, DisputeStatus.WON, DisputeStatus.LOST},
    DisputeStatus.WARNING_UNDER_REVIEW: {DisputeStatus.WARNING_CLOSED, DisputeStatus.NEEDS_RESPONSE,
                                         DisputeStatus.WON, DisputeStatus.LOST},
    DisputeStatus.NEEDS_RESPONSE: {DisputeStatus.UNDER_REVIEW, DisputeStatus.WON, DisputeStatus.LOST},
    DisputeStatus.UNDER_REVIEW: {DisputeStatus.WON, DisputeStatus.LOST},
    DisputeStatus.WARNING_CLOSED: set(),
    DisputeStatus.WON: set(),
    DisputeStatus.LOST: set(),
    DisputeStatus.PREVENTED: set(),
}
DISPUTE_OPEN = frozenset({DisputeStatus.WARNING_NEEDS_RESPONSE, DisputeStatus.WARNING_UNDER_REVIEW,
                          DisputeStatus.NEEDS_RESPONSE, DisputeStatus.UNDER_REVIEW})


def dispute_status_moves(current: str, target: str) -> bool:
    """THE forward-only rule for a dispute's status: whether `target` is `current` or
    reachable from it (an older copy of the dispute, delivered late, is ignored whole)."""
    if current == target:
        return True
    seen, queue = {current}, [current]
    while queue:
        for nxt in DISPUTE_TRANSITIONS.get(queue.pop(0), ()):
            if nxt == target:
                return True
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False


class Dispute(BusinessOwned):
    """A dispute (chargeback or inquiry) on one of an invoice's payments, as Stripe has it.
    A lost one takes its amount out of the payment's and the invoice's net paid; the fee
    Stripe charges for it is kept beside (`fee`, from its balance transactions)."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="disputes")
    livemode = livemode_field()
    stripe_id = models.CharField(max_length=255, unique=True)
    amount = money_field(validators=[MinValueValidator(0)])
    currency = CurrencyField()
    reason = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=24, choices=DisputeStatus.choices, db_index=True)
    evidence_due_by = models.DateTimeField(null=True, blank=True)
    evidence_submitted = models.BooleanField(default=False)
    fee = money_field(validators=[MinValueValidator(0)])
    funds_withdrawn = money_field(validators=[MinValueValidator(0)])
    funds_reinstated = money_field(validators=[MinValueValidator(0)])
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When the app learned it was won, lost or closed.")

    class Meta:
        ordering = ["evidence_due_by", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0) & Q(fee__gte=0) & Q(funds_withdrawn__gte=0)
                                   & Q(funds_reinstated__gte=0),
                                   name="dispute_amounts_not_negative",
                                   violation_error_message="Dispute amounts cannot be negative."),
            models.CheckConstraint(condition=Q(status__in=DisputeStatus.values), name="dispute_status_known",
                                   violation_error_message="Unknown dispute status."),
        ]

    def __str__(self):
        return f"{self.stripe_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in DISPUTE_OPEN

    @property
    def amount_lost(self) -> Decimal:
        """What the dispute takes out of what was paid: its amount once lost, else nothing."""
        return self.amount if self.status == DisputeStatus.LOST else Decimal(0)

    def clean(self):
        self.check_same_business(payment=getattr(self, "payment", None), invoice=getattr(self, "invoice", None))
        check_money(self.currency, amount=self.amount, fee=self.fee, funds_withdrawn=self.funds_withdrawn,
                    funds_reinstated=self.funds_reinstated)


# --- credit notes (issue 13): corrections after finalizing, through Stripe's credit notes API ---
class CreditNoteReason(models.TextChoices):
    """Stripe's enum (credit_note.reason)."""
    DUPLICATE = "duplicate", "Duplicate"
    FRAUDULENT = "fraudulent", "Fraudulent"
    ORDER_CHANGE = "order_change", "Order change"
    PRODUCT_UNSATISFACTORY = "product_unsatisfactory", "Product unsatisfactory"


class CreditNoteStatus(models.TextChoices):
    """Stripe's status: issued, then possibly void (final)."""
    ISSUED = "issued", "Issued"
    VOID = "void", "Void"


CREDIT_NOTE_TRANSITIONS = {
    CreditNoteStatus.ISSUED: {CreditNoteStatus.VOID},
    CreditNoteStatus.VOID: set(),
}


class CreditNotePushStatus(models.TextChoices):
    """Where a credit note made in the CRM is in its way to Stripe (like InvoicePushStatus):
    pending: saved, not sent; pushing: a worker owns it (saved before the Stripe call);
    pushed: Stripe has it; failed: Stripe refused or could not be reached (`last_error`,
    Retry offered). A credit note made in Stripe (the Dashboard) is `pushed` from the start."""
    PENDING = "pending", "Not sent yet"
    PUSHING = "pushing", "Sending to Stripe"
    PUSHED = "pushed", "In Stripe"
    FAILED = "failed", "Failed"


class CreditNote(BusinessOwned):
    """A credit note on an invoice. `amount` is split as Stripe splits it: what lowers the
    amount owed on an open invoice (`pre_payment_amount`) and, on a paid one, what is
    refunded, credited to the customer's balance, or settled outside Stripe. Figures
    follow Stripe's credit note once it exists."""

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    livemode = livemode_field()
    number = models.CharField(max_length=64, blank=True, help_text="Stripe's credit note number.")
    stripe_id = models.CharField(max_length=255, null=True, blank=True)
    currency = CurrencyField()
    amount = money_field(validators=[MinValueValidator(0)])
    pre_payment_amount = money_field(validators=[MinValueValidator(0)])
    refund_amount = money_field(validators=[MinValueValidator(0)])
    credit_amount = money_field(validators=[MinValueValidator(0)])
    out_of_band_amount = money_field(validators=[MinValueValidator(0)])
    reason = models.CharField(max_length=32, choices=CreditNoteReason.choices, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=8, choices=CreditNoteStatus.choices, default=CreditNoteStatus.ISSUED, db_index=True)
    push_status = models.CharField(max_length=10, choices=CreditNotePushStatus.choices, default=CreditNotePushStatus.PENDING, db_index=True)
    push_attempts = models.PositiveIntegerField(default=0, editable=False)
    push_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True)
    # The refund Stripe made for `refund_amount` (its row is a finance.Refund, by this id).
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    # The confirmation form's one-time key: a double click (or a resubmitted page) finds
    # the credit note the first click made instead of making a second one.
    request_key = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    issued_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["business", "stripe_id"], name="uniq_credit_note_stripe_id_per_business"),
            models.UniqueConstraint(fields=["business", "request_key"], condition=~Q(request_key=""),
                                    name="uniq_credit_note_request_key_per_business"),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(pre_payment_amount__gte=0) & Q(refund_amount__gte=0)
                & Q(credit_amount__gte=0) & Q(out_of_band_amount__gte=0),
                name="credit_note_amounts_not_negative",
                violation_error_message="Credit note amounts cannot be negative.",
            ),
            models.CheckConstraint(
                condition=Q(amount=models.F("pre_payment_amount") + models.F("refund_amount")
                            + models.F("credit_amount") + models.F("out_of_band_amount")),
                name="credit_note_split_sums_to_amount",
                violation_error_message="What lowers the amount owed, refunds, credits and what is settled "
                                        "outside Stripe must add up to the credit note's amount.",
            ),
        ]

    def __str__(self):
        return self.number or f"Credit note {self.pk}"

    @property
    def post_payment_amount(self):
        return self.refund_amount + self.credit_amount + self.out_of_band_amount

    def clean(self):
        self.check_same_business(invoice=getattr(self, "invoice", None))
        if self.currency:
            self.currency = self.currency.upper()
