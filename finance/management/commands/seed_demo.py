"""`manage.py seed_demo`: the demo business "Demo Consulting Ltd" with its logins, contacts,
service catalog (USD, EUR, JPY), opportunities, tickets and unbilled billables.

Idempotent: every row is looked up by its natural key (slug, username, service code,
contact name, opportunity title, ticket subject, billable description) and created only
when missing, validated with full_clean() first. Rows that exist are left as they are, so
a second run creates and changes nothing, and a password someone changed is never reset.
Deterministic: fixed data, no randomness. Refuses to run unless DEBUG, because it creates
well-known logins (admin/admin ...). It lives in finance, the highest layer whose rows it
writes (crm, services, finance).
"""
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from crm.models import (
    Business, CustomFieldDefinition, CustomFieldTarget, CustomFieldType, Individual, Membership, Opportunity,
    Organization, Role, Ticket,
)
from finance.models import Billable, LineType
from services.models import Service, ServicePrice

D = Decimal

# (username, role, is_staff, is_superuser). The password is the username.
USERS = [
    ("admin", Role.OWNER, True, True),
    ("finance", Role.FINANCE, True, False),
    ("staff", Role.STAFF, False, False),
]

# code, name, list prices (USD, EUR, JPY: whole yen).
SERVICES = [
    ("STRAT-WS", "Strategy workshop (day)", "1800.00", "1650.00", "270000"),
    ("CONSULT-HR", "Senior consultant (hour)", "250.00", "230.00", "37000"),
    ("CONSULT-JR", "Consultant (hour)", "150.00", "140.00", "22000"),
    ("AUDIT-SEC", "Security audit", "4500.00", "4200.00", "680000"),
    ("DEV-SPRINT", "Development sprint (two weeks)", "12000.00", "11000.00", "1800000"),
    ("SUPPORT-MO", "Support retainer (month)", "900.00", "850.00", "135000"),
    ("TRAINING", "Team training (half day)", "1200.00", "1100.00", "180000"),
    ("REPORT", "Written report", "600.00", "550.00", "90000"),
]
PRICE_CURRENCIES = ("USD", "EUR", "JPY")

# name, billing email, address line 1, city, postal code, country, VAT / tax id, custom fields
ORGANIZATIONS = [
    ("Acme Manufacturing Ltd", "accounts@acme.example", "1 Foundry Lane", "Sheffield", "S1 2AB", "GB",
     "GB123456789", {"segment": "manufacturing", "po_required": True}),
    ("Bergmann & Söhne GmbH", "rechnung@bergmann.example", "Hafenstraße 12", "Hamburg", "20457", "DE",
     "DE811234567", {"segment": "logistics", "language": "de"}),
    ("Sakura Systems KK", "keiri@sakura.example", "2-1-1 Marunouchi", "Tokyo", "100-0005", "JP",
     "T1234567890123", {"segment": "software", "payment_terms_days": 60}),
    ("Northwind Traders Inc", "ap@northwind.example", "500 Market Street", "San Francisco", "94105", "US",
     "12-3456789", {"segment": "retail", "po": "NW-2026-118"}),
]

# Custom fields (issue 15): applies to, key, label, type. The contacts' values above use
# them; `manage.py seed_demo_rules` (stripe_integration) maps some to Stripe and adds a
# filter that keeps Diana Prince (US, no PO) out of Stripe.
CUSTOM_FIELDS = [
    (CustomFieldTarget.CONTACT, "segment", "Segment", CustomFieldType.TEXT),
    (CustomFieldTarget.CONTACT, "po_required", "PO required", CustomFieldType.BOOL),
    (CustomFieldTarget.CONTACT, "language", "Language", CustomFieldType.TEXT),
    (CustomFieldTarget.CONTACT, "payment_terms_days", "Payment terms (days)", CustomFieldType.NUMBER),
    (CustomFieldTarget.CONTACT, "po", "Standing PO", CustomFieldType.TEXT),
    (CustomFieldTarget.INVOICE, "cost_center", "Cost center", CustomFieldType.TEXT),
]

# name, email, organization (or None), country
INDIVIDUALS = [
    ("Alice Johnson", "alice@acme.example", "Acme Manufacturing Ltd", "GB"),
    ("Bob Smith", "bob@acme.example", "Acme Manufacturing Ltd", "GB"),
    ("Clara Weber", "clara@bergmann.example", "Bergmann & Söhne GmbH", "DE"),
    ("Kenji Tanaka", "kenji@sakura.example", "Sakura Systems KK", "JP"),
    ("Diana Prince", "diana@prince.example", None, "US"),
    ("Ethan Brown", "ethan@brown.example", None, "GB"),
]

# title, contact, stage, value, currency
OPPORTUNITIES = [
    ("Acme ERP modernisation", "Acme Manufacturing Ltd", Opportunity.Stage.PROPOSAL, "48000.00", "USD"),
    ("Bergmann security review", "Bergmann & Söhne GmbH", Opportunity.Stage.QUALIFIED, "12600.00", "EUR"),
    ("Sakura data platform", "Sakura Systems KK", Opportunity.Stage.WON, "5400000", "JPY"),
    ("Northwind support renewal", "Northwind Traders Inc", Opportunity.Stage.LEAD, "10800.00", "USD"),
]

# subject, contact, status, priority
TICKETS = [
    ("Login issues after SSO change", "Alice Johnson", Ticket.Status.OPEN, Ticket.Priority.HIGH),
    ("Invoice address update", "Clara Weber", Ticket.Status.CLOSED, Ticket.Priority.LOW),
    ("Performance regression in nightly batch", "Kenji Tanaka", Ticket.Status.PENDING, Ticket.Priority.NORMAL),
]

ACME, BERG, SAKURA, NORTH = "Acme Manufacturing Ltd", "Bergmann & Söhne GmbH", "Sakura Systems KK", "Northwind Traders Inc"


def b(description, contact, service, currency, qty="1", price=None, *, pct=None, amt=None, vat="0",
      incl=False, credit=False, opp=None, ticket=None):
    """One billable. price=None takes the service's list price; a price is a negotiated rate."""
    return dict(description=description, contact=contact, service=service, currency=currency, quantity=D(qty),
                unit_price=None if price is None else D(price), discount_percent=None if pct is None else D(pct),
                discount_amount=None if amt is None else D(amt), vat_rate=D(vat), prices_include_vat=incl,
                line_type=LineType.CREDIT if credit else LineType.CHARGE, opportunity=opp, ticket=ticket)


BILLABLES = [
    # A UK company: US dollars with 20 % UK VAT on top.
    b("Acme: discovery workshop", ACME, "STRAT-WS", "USD", vat="20", opp="Acme ERP modernisation"),
    b("Acme: senior consulting, week 1", ACME, "CONSULT-HR", "USD", "32", "225.00", vat="20", opp="Acme ERP modernisation"),
    b("Acme: senior consulting, week 2", ACME, "CONSULT-HR", "USD", "28.5", "225.00", vat="20", opp="Acme ERP modernisation"),
    b("Acme: consultant hours, October", ACME, "CONSULT-JR", "USD", "40", pct="10", vat="20"),
    b("Acme: security audit", ACME, "AUDIT-SEC", "USD", amt="500.00", vat="20"),
    b("Acme: written findings report", ACME, "REPORT", "USD", vat="20"),
    b("Acme: SSO incident support", ACME, "CONSULT-HR", "USD", "3", vat="20", ticket="Login issues after SSO change"),
    b("Acme: goodwill credit for the SSO incident", ACME, None, "USD", "1", "150.00", vat="20", credit=True,
      ticket="Login issues after SSO change"),
    b("Acme: team training for two groups", ACME, "TRAINING", "USD", "2", "1000.00", vat="20"),
    # A US company: no VAT.
    b("Northwind: support retainer, October", NORTH, "SUPPORT-MO", "USD", opp="Northwind support renewal"),
    b("Northwind: support retainer, November", NORTH, "SUPPORT-MO", "USD", opp="Northwind support renewal"),
    b("Northwind: development sprint 14", NORTH, "DEV-SPRINT", "USD", "1", "11500.00", pct="5"),
    b("Northwind: consultant hours", NORTH, "CONSULT-JR", "USD", "12.25"),
    # An EU business customer: euros, reverse charge (0 % VAT charged).
    b("Bergmann: security audit", BERG, "AUDIT-SEC", "EUR", opp="Bergmann security review"),
    b("Bergmann: remediation consulting", BERG, "CONSULT-HR", "EUR", "16", "210.00", opp="Bergmann security review"),
    b("Bergmann: strategy workshop", BERG, "STRAT-WS", "EUR", amt="150.00"),
    b("Bergmann: team training", BERG, "TRAINING", "EUR", pct="15"),
    b("Bergmann: written audit report", BERG, "REPORT", "EUR"),
    b("Clara Weber: coaching sessions", "Clara Weber", "CONSULT-HR", "EUR", "2"),
    # A Japanese company: whole yen.
    b("Sakura: data platform sprint 1", SAKURA, "DEV-SPRINT", "JPY", opp="Sakura data platform"),
    b("Sakura: data platform sprint 2", SAKURA, "DEV-SPRINT", "JPY", "1", "1650000", opp="Sakura data platform"),
    b("Sakura: architecture workshop", SAKURA, "STRAT-WS", "JPY", pct="10"),
    b("Sakura: batch performance investigation", SAKURA, "CONSULT-HR", "JPY", "6",
      ticket="Performance regression in nightly batch"),
    b("Sakura: support retainer, October", SAKURA, "SUPPORT-MO", "JPY", amt="5000"),
    b("Sakura: credit for the late sprint 1 report", SAKURA, None, "JPY", "1", "30000", credit=True),
    b("Kenji Tanaka: training seat", "Kenji Tanaka", "TRAINING", "JPY", "1", "150000"),
    # A UK consumer: consumer prices include 20 % VAT.
    b("Ethan Brown: career strategy sessions", "Ethan Brown", "CONSULT-HR", "USD", "2", vat="20", incl=True),
    b("Ethan Brown: written plan", "Ethan Brown", "REPORT", "USD", pct="10", vat="20", incl=True),
    b("Ethan Brown: follow-up call", "Ethan Brown", "CONSULT-JR", "USD", "0.5", "120.00", vat="20", incl=True),
    # A US freelancer.
    b("Diana Prince: website review", "Diana Prince", "REPORT", "USD", amt="100.00"),
    b("Diana Prince: consultant hours", "Diana Prince", "CONSULT-JR", "USD", "6"),
]
FIRST_SERVICE_DATE = date(2026, 9, 1)


class Command(BaseCommand):
    help = "Create the demo business, its logins and sample data (idempotent; DEBUG only)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DEBUG on: it creates the well-known logins admin/admin, "
                "finance/finance and staff/staff. Set DJANGO_DEBUG=1 for a development or demo database."
            )
        self.created = Counter()
        with transaction.atomic():
            business = self.seed()
        self.print_summary(business)

    def ensure(self, model, lookup, **defaults):
        """The row matching `lookup`, created (validated) with `defaults` when missing."""
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            obj = model(**lookup, **defaults)
            obj.full_clean()
            obj.save()
            self.created[model] += 1
        return obj

    def ensure_user(self, username, *, is_staff, is_superuser):
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@demo.example", is_staff=is_staff,
                        is_superuser=is_superuser)
            user.set_password(username)  # only here: a password someone changed stays changed
            user.full_clean()
            user.save()
            self.created[User] += 1
        return user

    def seed(self):
        business = self.ensure(Business, {"slug": "demo"}, name="Demo Consulting Ltd", country="GB",
                               default_currency="USD", finance_enabled=True)
        users = {}
        for username, role, is_staff, is_superuser in USERS:
            users[username] = self.ensure_user(username, is_staff=is_staff, is_superuser=is_superuser)
            self.ensure(Membership, {"business": business, "user": users[username]}, role=role)

        services = {}
        for code, name, *amounts in SERVICES:
            services[code] = service = self.ensure(Service, {"business": business, "code": code}, name=name)
            for currency, amount in zip(PRICE_CURRENCIES, amounts):
                self.ensure(ServicePrice, {"business": business, "service": service, "currency": currency},
                            amount=D(amount))

        for applies_to, key, label, field_type in CUSTOM_FIELDS:
            self.ensure(CustomFieldDefinition, {"business": business, "applies_to": applies_to, "key": key},
                        label=label, field_type=field_type)

        contacts = {}
        for name, email, line1, city, postal_code, country, tax_id, custom in ORGANIZATIONS:
            contacts[name] = self.ensure(
                Organization, {"business": business, "name": name}, billing_email=email, address_line1=line1,
                city=city, postal_code=postal_code, country=country, tax_id=tax_id, custom_fields=custom)
        for name, email, organization, country in INDIVIDUALS:
            contacts[name] = self.ensure(Individual, {"business": business, "name": name}, email=email,
                                         country=country, organization=contacts.get(organization))

        opportunities = {
            title: self.ensure(Opportunity, {"business": business, "title": title}, contact=contacts[contact],
                               stage=stage, value=D(value), currency=currency, owner=users["admin"])
            for title, contact, stage, value, currency in OPPORTUNITIES
        }
        tickets = {
            subject: self.ensure(Ticket, {"business": business, "subject": subject}, contact=contacts[contact],
                                 status=status, priority=priority)
            for subject, contact, status, priority in TICKETS
        }

        for i, spec in enumerate(BILLABLES):
            fields = dict(spec)
            description = fields.pop("description")
            fields.update(bill_to=contacts[fields.pop("contact")], service=services.get(fields.pop("service")),
                          opportunity=opportunities.get(fields.pop("opportunity")),
                          ticket=tickets.get(fields.pop("ticket")),
                          service_date=FIRST_SERVICE_DATE + timedelta(days=2 * i))
            self.ensure(Billable, {"business": business, "description": description}, **fields)
        return business

    def print_summary(self, business):
        def count(model):
            return model.objects.filter(business=business).count()

        created = ", ".join(
            f"{n} {model._meta.verbose_name if n == 1 else model._meta.verbose_name_plural}"
            for model, n in self.created.items()
        ) or "nothing (already seeded)"
        unbilled = Billable.objects.filter(business=business, status="unbilled").count()
        self.stdout.write(
            f"Demo business {business.name!r} (slug {business.slug!r}): "
            f"{Membership.objects.filter(business=business).count()} members, "
            f"{count(Organization)} organizations, {count(Individual)} individuals, {count(Service)} services "
            f"({count(ServicePrice)} prices), {count(Opportunity)} opportunities, {count(Ticket)} tickets, "
            f"{count(Billable)} billables ({unbilled} unbilled).\n"
            f"Created this run: {created}.\n"
            "Logins: admin/admin (superuser, owner), finance/finance (finance), staff/staff (staff)."
        )
