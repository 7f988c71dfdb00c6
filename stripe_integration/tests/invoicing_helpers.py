"""Shared set-up of the invoicing tests: a business connected to the sandbox through the
real OAuth flow, billables made the way staff make them (full_clean: list prices are
looked up), and reads of what Stripe holds, through the app's own gateway."""
from decimal import Decimal

from crm.tests.factories import IndividualFactory, OrganizationFactory
from finance.models import Billable
from stripe_integration.connect import oauth as services
from stripe_integration.models import IntegrationSettings, StripeConnection
from stripe_integration.tests import oauth_helpers as oauth

D = Decimal


def connect(client, user, business) -> StripeConnection:
    client.force_login(user)
    oauth.connect(client)
    return StripeConnection.objects.get(business=business, status="connected")


def contact(business, **kwargs):
    kwargs.setdefault("country", business.country)
    return IndividualFactory(business=business, **kwargs)


def organization(business, **kwargs):
    return OrganizationFactory(business=business, **kwargs)


def billable(business, bill_to, **kwargs) -> Billable:
    values = {"quantity": D("1"), "unit_price": D("100.00"), "currency": "USD", "description": "Consulting"}
    values.update(kwargs)
    b = Billable(business=business, bill_to=bill_to, **values)
    b.full_clean()
    b.save()
    return b


def settings_for(business, **values) -> IntegrationSettings:
    s = IntegrationSettings.for_business(business)
    for name, value in values.items():
        setattr(s, name, value)
    s.full_clean()
    s.save()
    return s


def stripe_invoices(connection: StripeConnection, customer: str) -> list:
    """Every Stripe invoice of the customer, as the gateway reads them."""
    return services.gateway().invoice_find_by_metadata(account=connection.stripe_user_id, customer=customer, metadata={})


def stripe_invoice_raw(connection: StripeConnection, invoice_id: str) -> dict:
    return services.gateway().invoice_retrieve(account=connection.stripe_user_id, invoice_id=invoice_id)


def local_date(timestamp):
    import datetime

    from django.utils import timezone

    return timezone.localtime(datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)).date()
