from decimal import Decimal

import factory

from crm.tests.factories import BusinessFactory, IndividualFactory
from finance.models import Billable, BillableStatus, Dispute, Invoice, InvoiceLine, Payment, Refund


class BillableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Billable

    business = factory.SubFactory(BusinessFactory)
    bill_to = factory.SubFactory(IndividualFactory, business=factory.SelfAttribute("..business"))
    description = factory.Sequence(lambda n: f"Work item {n}")
    quantity = Decimal("1")
    unit_price = Decimal("100.00")
    currency = "USD"
    status = BillableStatus.UNBILLED
    # An invoiced billable is on an invoice (a database rule): one of its own unless given.
    invoice = factory.Maybe(
        factory.LazyAttribute(lambda o: o.status == BillableStatus.INVOICED),
        yes_declaration=factory.SubFactory(
            "finance.tests.factories.InvoiceFactory", business=factory.SelfAttribute("..business"),
            bill_to=factory.SelfAttribute("..bill_to"), currency=factory.SelfAttribute("..currency")),
        no_declaration=None,
    )


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    business = factory.SubFactory(BusinessFactory)
    bill_to = factory.SubFactory(IndividualFactory, business=factory.SelfAttribute("..business"))
    number = factory.Sequence(lambda n: f"INV-{n:05d}")
    currency = "USD"


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    business = factory.SelfAttribute("invoice.business")
    position = factory.Sequence(lambda n: n + 1)  # one line per position (a database rule)
    description = "Line"
    quantity = Decimal("1")
    unit_price = Decimal("100.00")
    subtotal = Decimal("100.00")
    total = Decimal("100.00")


class PaymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Payment

    invoice = factory.SubFactory(InvoiceFactory)
    business = factory.SelfAttribute("invoice.business")
    amount = Decimal("100.00")
    currency = "USD"


class RefundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Refund

    payment = factory.SubFactory(PaymentFactory)
    business = factory.SelfAttribute("payment.business")
    amount = Decimal("10.00")
    currency = "USD"


class DisputeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dispute

    payment = factory.SubFactory(PaymentFactory)
    invoice = factory.SelfAttribute("payment.invoice")
    business = factory.SelfAttribute("payment.business")
    stripe_id = factory.Sequence(lambda n: f"dp_test{n}")
    amount = Decimal("100.00")
    currency = "USD"
    reason = "fraudulent"
    status = "needs_response"
