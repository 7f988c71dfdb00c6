from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from crm.models import Business, Individual, Membership, Opportunity, Organization, Role, Ticket
from finance.models import Billable, BillableStatus, LineType
from services.models import Service, ServicePrice

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def debug_on(settings):
    """The command only runs with DEBUG on, and pytest-django turns DEBUG off for tests."""
    settings.DEBUG = True
    # Each seed hashes three passwords; PBKDF2's deliberate slowness only slows the tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SEEDED_MODELS = [Business, get_user_model(), Membership, Organization, Individual, Service, ServicePrice,
                 Opportunity, Ticket, Billable]


def seed():
    call_command("seed_demo", skip_checks=True, stdout=StringIO())


def snapshot():
    """Every seeded row with all its field values (updated_at included)."""
    return {model.__name__: sorted(model.objects.values_list(), key=lambda row: row[0]) for model in SEEDED_MODELS}


def test_seed_demo_creates_the_demo_business_and_logins(capsys):
    call_command("seed_demo", skip_checks=True)

    business = Business.objects.get(slug="demo")
    assert (business.name, business.country, business.default_currency, business.finance_enabled) == (
        "Demo Consulting Ltd", "GB", "USD", True)
    users = {u.username: u for u in get_user_model().objects.all()}
    roles = dict(Membership.objects.filter(business=business).values_list("user__username", "role"))
    assert roles == {"admin": Role.OWNER, "finance": Role.FINANCE, "staff": Role.STAFF}
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert users["finance"].is_staff and not users["finance"].is_superuser
    assert not users["staff"].is_staff and not users["staff"].is_superuser
    assert all(users[name].check_password(name) for name in ("admin", "finance", "staff"))
    out = capsys.readouterr().out
    assert "Demo Consulting Ltd" in out and "31 billables" in out


def test_seed_demo_contacts_of_both_kinds():
    seed()

    orgs = Organization.objects.filter(business__slug="demo")
    people = Individual.objects.filter(business__slug="demo")
    assert orgs.count() == 4 and people.count() == 6
    for org in orgs:
        assert org.billing_email and org.address_line1 and org.country and org.tax_id and org.custom_fields
    assert people.filter(organization__isnull=False).count() == 4
    assert people.filter(organization__isnull=True).count() == 2


def test_seed_demo_services_priced_in_usd_eur_and_whole_yen():
    seed()

    services = Service.objects.filter(business__slug="demo").prefetch_related("prices")
    assert services.count() == 8
    for service in services:
        assert sorted(p.currency for p in service.prices.all()) == ["EUR", "JPY", "USD"]
        assert service.price_for("JPY").amount == service.price_for("JPY").amount.to_integral_value()


def test_seed_demo_billables_cover_the_pricing_cases():
    seed()

    billables = list(Billable.objects.filter(business__slug="demo").select_related("service"))
    assert len(billables) == 31
    assert all(b.status == BillableStatus.UNBILLED for b in billables)
    assert {b.currency for b in billables} == {"USD", "EUR", "JPY"}
    assert len({b.description for b in billables}) == len(billables)
    negotiated = [b for b in billables if b.service and b.unit_price != b.service.price_for(b.currency).amount]
    assert len(negotiated) >= 5 and not any(b.uses_list_price for b in negotiated)
    assert sum(b.uses_list_price for b in billables) >= 15
    assert sum(b.discount_percent is not None for b in billables) >= 3
    assert sum(b.discount_amount is not None for b in billables) >= 3
    assert sum(b.vat_rate == Decimal("20") for b in billables) >= 8
    assert sum(b.prices_include_vat for b in billables) >= 2
    assert sum(b.line_type == LineType.CREDIT for b in billables) == 2
    assert any(b.opportunity_id for b in billables) and any(b.ticket_id for b in billables)
    for b in billables:
        if b.currency == "JPY":
            assert b.unit_price == b.unit_price.to_integral_value()


def test_seed_demo_second_run_creates_and_changes_nothing(capsys):
    seed()
    before = snapshot()

    call_command("seed_demo", skip_checks=True)

    assert snapshot() == before
    assert "Created this run: nothing" in capsys.readouterr().out


def test_seed_demo_keeps_a_changed_password():
    seed()
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("a much better password")
    admin.save()

    seed()

    admin.refresh_from_db()
    assert admin.check_password("a much better password")
    assert not admin.check_password("admin")


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only runs with DEBUG on"):
        call_command("seed_demo", skip_checks=True)

    assert not Business.objects.filter(slug="demo").exists()
