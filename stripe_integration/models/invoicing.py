"""What the invoice push made once in a connected account and reuses (issue 6).

Tax rates ("reused per rate and country"), the coupons that carry line discounts, and the
catch-all product of lines priced inline: each is made once per connection, with a
deterministic idempotency key (coupons also with a deterministic id), and remembered here
so later invoices cost no extra call.
"""
from django.db import models

from crm.models import BusinessOwned


class BillingObjectKind(models.TextChoices):
    TAX_RATE = "tax_rate", "Tax rate"
    COUPON = "coupon", "Coupon"
    PRODUCT = "product", "Product"


class StripeBillingObject(BusinessOwned):
    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=BillingObjectKind.choices)
    # tax_rate: "20|exclusive|GB"; coupon: "percent:12.5" or "amount:usd:1500"; product: "inline"
    key = models.CharField(max_length=100)
    stripe_id = models.CharField("Stripe id", max_length=255)

    class Meta:
        verbose_name = "Stripe billing object"
        ordering = ["connection", "kind", "key"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "key"], name="uniq_billing_object_per_connection"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.key} -> {self.stripe_id}"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None))
