"""The service catalog: what a business sells, with one price per currency."""
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from crm.models import BusinessOwned
from crm.money_fields import CurrencyField, check_money


class Service(BusinessOwned):
    code = models.CharField(max_length=50, help_text="Unique within the business, e.g. CONSULT-HR.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True, help_text="Inactive services are archived, never deleted once used.")

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["business", "code"], name="uniq_service_code_per_business")]

    def __str__(self):
        return f"{self.code} - {self.name}"

    def price_for(self, currency):
        """The list price in `currency`, or None. Uses prefetched prices when present."""
        for price in self.prices.all():
            if price.currency == currency:
                return price
        return None


class ServicePrice(BusinessOwned):
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="prices")
    currency = CurrencyField()
    amount = models.DecimalField(max_digits=18, decimal_places=3, validators=[MinValueValidator(0)])

    class Meta:
        ordering = ["service", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["service", "currency"], name="uniq_service_price_currency"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="serviceprice_amount_not_negative",
                                   violation_error_message="A price cannot be negative."),
        ]

    def __str__(self):
        return f"{self.amount} {self.currency}"

    def clean(self):
        self.check_same_business(service=getattr(self, "service", None))
        check_money(self.currency, amount=self.amount)
