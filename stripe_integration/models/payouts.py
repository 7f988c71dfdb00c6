"""Payouts of a connected account and the balance transactions each carried (issue 15,
"Payouts and fees"), linked to the CRM's payments, refunds and disputes and through
them to invoices. Written only by `stripe_integration.payouts.sync`; read by the payout
pages, the exceptions list and the CSV export.

These are Stripe facts mirrored for reconciliation (a finance concept shown on finance
pages), kept in the integration because they name Stripe ids and come only from Stripe;
finance stays free of Stripe (the layers contract).
"""
from django.db import models

from crm.models import BusinessOwned
from crm.money_fields import CurrencyField, check_money
from finance.models import Dispute, Invoice, Payment, Refund, money_field
from finance.money import format_money

from .connection import StripeConnection


class PayoutStatus(models.TextChoices):
    # Stripe's payout statuses (docs.stripe.com/api/payouts/object#payout_object-status).
    PENDING = "pending", "Pending"
    IN_TRANSIT = "in_transit", "In transit"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class ItemException(models.TextChoices):
    NONE = "", "—"
    NO_INVOICE = "no_invoice", "No CRM invoice"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount differs from the CRM"


class Payout(BusinessOwned):
    connection = models.ForeignKey(StripeConnection, on_delete=models.PROTECT, related_name="payouts")
    account = models.CharField("Stripe account id", max_length=255)
    livemode = models.BooleanField(default=False)
    stripe_id = models.CharField(max_length=255, unique=True)
    amount = money_field()
    currency = CurrencyField()
    status = models.CharField(max_length=16, choices=PayoutStatus.choices, db_index=True)
    automatic = models.BooleanField(default=True)
    arrival_date = models.DateTimeField(db_index=True)
    stripe_created = models.DateTimeField("created in Stripe")
    description = models.CharField(max_length=255, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # From the items, kept at each sync so that the list page needs no aggregate per row.
    items_synced_at = models.DateTimeField(null=True, blank=True)
    item_count = models.PositiveIntegerField(default=0)
    gross = money_field()
    fees = money_field()
    net = money_field()
    exception_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-arrival_date", "-pk"]

    def __str__(self):
        return f"Payout of {format_money(self.amount, self.currency)} ({self.get_status_display().lower()})"

    @property
    def difference(self):
        """What the items' net leaves unexplained (0 when they add up to the payout)."""
        return self.amount - self.net

    @property
    def balanced(self) -> bool:
        return self.items_synced_at is not None and self.difference == 0

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None))
        check_money(self.currency, amount=self.amount)


class PayoutItem(BusinessOwned):
    """One balance transaction a payout carried: a charge, a refund, a dispute's
    withdrawal or reversal, a failed refund's return... with Stripe's fee and net."""

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="items")
    stripe_balance_transaction_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=40)
    reporting_category = models.CharField(max_length=60, blank=True)
    amount = money_field()
    fee = money_field()
    net = money_field()
    currency = CurrencyField()
    description = models.CharField(max_length=500, blank=True)
    fee_description = models.CharField(max_length=255, blank=True)
    source_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True)
    available_on = models.DateTimeField(null=True, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    refund = models.ForeignKey(Refund, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dispute = models.ForeignKey(Dispute, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    exception = models.CharField(max_length=20, choices=ItemException.choices, blank=True, db_index=True)
    exception_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return f"{self.type} {format_money(self.amount, self.currency)} ({self.stripe_balance_transaction_id})"

    def clean(self):
        self.check_same_business(payout=getattr(self, "payout", None), invoice=getattr(self, "invoice", None),
                                 payment=getattr(self, "payment", None))
