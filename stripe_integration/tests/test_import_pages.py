"""One page of the import (issue 15: per-page work): objects new, imported before and
skipped on one page, matches inside the page, number clashes, bad values, and the same
finance rows as the webhooks' path. Pages are handed to `engine._page` as Stripe lists
them (plain dicts), as `run_import` does after each list call."""
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact, Individual
from crm.tests.factories import IndividualFactory
from finance.models import Invoice, InvoiceStatus, Payment
from stripe_integration.importing import billing
from stripe_integration.importing.engine import _page
from stripe_integration.models import (
    CustomerLink, ImportedObject, ImportRules, StripeConnection, StripeImport,
)
from stripe_integration.webhooks import apply

pytestmark = pytest.mark.django_db

T0 = 1_760_000_000


def _job(business, account):
    connection = StripeConnection.objects.create(business=business, stripe_user_id=account, status="connected")
    return StripeImport.objects.create(business=business, connection=connection)


def _run(job, kind, objects):
    return _page(job, ImportRules.for_business(job.business), kind, objects, gw=None)


def _customer(cid, email, **extra):
    return {"id": cid, "object": "customer", "email": email, "name": f"Customer {cid}", "metadata": {}, **extra}


def _invoice(iid, customer, *, status="open", number=None, total=10000, paid=0, **extra):
    return {
        "id": iid, "object": "invoice", "customer": customer, "status": status, "number": number or f"NUM-{iid}",
        "currency": "usd", "collection_method": "send_invoice", "subtotal": total, "total": total,
        "total_excluding_tax": total, "amount_paid": paid, "amount_remaining": total - paid,
        "due_date": T0 + 86400 * 30, "hosted_invoice_url": f"https://invoice.example.test/{iid}",
        "invoice_pdf": f"https://invoice.example.test/{iid}.pdf",
        "status_transitions": {"finalized_at": T0, "paid_at": T0 + 60 if status == "paid" else None},
        "pre_payment_credit_notes_amount": 0, "post_payment_credit_notes_amount": 0,
        "lines": {"data": [{"id": f"il_{iid}", "amount": total, "quantity": 1, "description": "Work"}],
                  "has_more": False},
        **extra,
    }


def _intent(pid, amount, *, refunded=0):
    return {
        "id": pid, "object": "payment_intent", "status": "succeeded", "amount": amount, "amount_received": amount,
        "currency": "usd", "created": T0, "metadata": {}, "livemode": False,
        "latest_charge": {
            "id": f"ch_{pid}", "created": T0 + 30, "amount_refunded": refunded,
            "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
            "balance_transaction": {"currency": "usd", "fee": 320, "net": amount - 320},
        },
    }


def _link(invoice_id, intent_id):
    return {"id": f"inpay_{intent_id}", "invoice": invoice_id,
            "payment": {"type": "payment_intent", "payment_intent": intent_id}}


def test_customer_page_mixes_new_imported_skipped_and_same_page_email_matches(business_a):
    job = _job(business_a, "acct_pages")
    known = IndividualFactory(business=business_a, email="Known@Example.test")
    _run(job, "customers", [_customer("cus_before", "before@example.test")])
    page = [
        _customer("cus_before", "before@example.test"),  # imported by the page before
        _customer("cus_gone", "gone@example.test", deleted=True),
        _customer("cus_known", "known@example.test"),
        _customer("cus_new", "shared@example.test"),
        _customer("cus_same", "SHARED@example.test"),  # same e-mail as the new one, same page
        _customer("cus_cc", "boss@example.test", metadata={"cc": "shared@example.test"}),
        _customer("cus_bad", "not an e-mail"),
    ]
    contacts_before = Contact.objects.count()
    _run(job, "customers", page)
    counts = job.counts["customers"]
    assert (counts["created"], counts["matched"], counts["skipped"]) == (3, 3, 2)  # the first page's one included
    assert counts["reasons"] == {"matched: imported before": 1, "skipped: deleted in Stripe": 1,
                                 "matched: by e-mail": 2, "skipped: invalid: Enter a valid email address.": 1}
    shared = Individual.objects.filter(business=business_a, email__iexact="shared@example.test")
    assert shared.count() == 1 + 1  # the new customer, and the cc person of cus_cc's organization
    mapped = dict(ImportedObject.objects.filter(connection=job.connection).values_list("stripe_id", "local_id"))
    assert mapped["cus_known"] == known.pk and mapped["cus_same"] == mapped["cus_new"]
    assert mapped["cus_gone"] is None and mapped["cus_bad"] is None
    new = Individual.objects.get(pk=mapped["cus_new"])
    assert (new.kind, new.email, new.name, new.organization) == ("individual", "shared@example.test", "Customer cus_new", None)
    # One link per contact: the second customer of the shared contact bills it unlinked.
    links = dict(CustomerLink.objects.filter(connection=job.connection).values_list("stripe_customer_id", "contact_id"))
    assert links == {"cus_before": mapped["cus_before"], "cus_known": known.pk, "cus_new": mapped["cus_new"],
                     "cus_cc": mapped["cus_cc"]}
    assert Contact.objects.count() == contacts_before + 3  # cus_new; cus_cc's organization and its cc person
    # Run again: nothing new, all counted as before.
    again = StripeImport.objects.create(business=business_a, connection=job.connection)
    _run(again, "customers", page)
    assert again.counts["customers"]["created"] == 0 and Contact.objects.count() == contacts_before + 3


def test_customer_email_match_stays_in_the_business_and_uses_the_lower_email_index(business_a, business_b):
    """The e-mail lookup finds rows by the lower-cased e-mail's index across businesses and
    keeps this business's: another business's contact with the same e-mail is never
    matched, and (SQLite) no page reads every contact of the business."""
    from crm.tests.factories import OrganizationFactory

    theirs = IndividualFactory(business=business_b, email="Both@Example.test")
    OrganizationFactory(business=business_b, billing_email="org@example.test")
    ours_org = OrganizationFactory(business=business_a, billing_email="Org@Example.test")
    job = _job(business_a, "acct_emails")
    with CaptureQueriesContext(db_connection) as queries:
        _run(job, "customers", [_customer("cus_both", "both@example.test"), _customer("cus_org", "org@example.test")])
    mapped = dict(ImportedObject.objects.filter(connection=job.connection).values_list("stripe_id", "local_id"))
    assert mapped["cus_both"] != theirs.pk and Individual.objects.get(pk=mapped["cus_both"]).business == business_a
    assert mapped["cus_org"] == ours_org.pk
    counts = job.counts["customers"]
    assert (counts["created"], counts["matched"], counts["reasons"]) == (1, 1, {"matched: by e-mail": 1})
    lookups = [q["sql"] for q in queries if "LOWER(" in q["sql"] and " IN (" in q["sql"]]
    assert len(lookups) == 2, lookups
    if db_connection.vendor == "sqlite":
        for sql in lookups:
            with db_connection.cursor() as cursor:
                cursor.execute("EXPLAIN QUERY PLAN " + sql.replace("%", "%%"))
                plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "email_lower" in plan, plan


def test_invoice_page_numbers_rules_and_bad_values(business_a):
    job = _job(business_a, "acct_inv")
    _run(job, "customers", [_customer("cus_1", "one@example.test")])
    contact = Contact.objects.get(pk=ImportedObject.objects.get(stripe_id="cus_1").local_id)
    Invoice.objects.create(business=business_a, number="INV-1", bill_to=contact, currency="USD")
    Invoice.objects.create(business=business_a, number="INV-2", bill_to=contact, currency="USD")
    Invoice.objects.create(business=business_a, number="INV-2-in_inv_2", bill_to=contact, currency="USD")
    _run(job, "invoices", [_invoice("in_before", "cus_1")])
    page = [
        _invoice("in_before", "cus_1"),
        _invoice("in_draft", "cus_1", status="draft", number=""),
        _invoice("in_orphan", "cus_unknown"),
        _invoice("in_clash", "cus_1", number="INV-1"),
        _invoice("in_inv_2", "cus_1", number="INV-2"),  # its fallback number is taken too
        _invoice("in_bad", "cus_1", hosted_invoice_url="not a url"),
        _invoice("in_paid", "cus_1", status="paid", paid=10000, paid_out_of_band=True),
    ]
    with CaptureQueriesContext(db_connection) as queries:
        _run(job, "invoices", page)
    reasons = job.counts["invoices"]["reasons"]
    assert reasons["matched: imported before"] == 1
    assert reasons["skipped: draft (rule: drafts are not imported)"] == 1
    assert reasons["skipped: its customer was not imported"] == 1
    assert reasons["skipped: its number and the fallback number are taken"] == 1
    assert [r for r in reasons if r.startswith("skipped: invalid: hosted_invoice_url")]
    assert job.counts["invoices"]["created"] == 3  # in_before (first page), in_clash, in_paid
    clash = Invoice.objects.get(stripe_invoice_id="in_clash")
    assert clash.number == "INV-1-in_clash" and clash.status == InvoiceStatus.OPEN and clash.lines.count() == 1
    assert not Invoice.objects.filter(stripe_invoice_id__in=["in_inv_2", "in_bad", "in_draft"]).exists()
    paid = Invoice.objects.get(stripe_invoice_id="in_paid")
    assert paid.status == InvoiceStatus.PAID and paid.amount_paid == Decimal("100.00")
    out_of_band = paid.payments.get()
    assert (out_of_band.method, out_of_band.amount, out_of_band.paid_at) == ("out_of_band", Decimal("100.00"), paid.paid_at)
    # A fixed number of queries for the page, whatever its size (the rules' lookup included).
    assert len(queries) <= 9, "\n".join(q["sql"][:150] for q in queries)
    # Number clashes are looked up by the (business, number) index: an ORDER BY (the
    # model's -created_at) made SQLite read all the business's invoices for each page.
    clashes = [q["sql"] for q in queries if '"number" IN' in q["sql"]]
    assert len(clashes) == 1 and "ORDER BY" not in clashes[0], clashes


def _invoice_by_webhooks(business, stripe_invoice, contact_id):
    """What the webhooks' path makes of the same objects: a saved draft brought up to the
    Stripe invoice by `invoice_apply_stripe`, paid outside Stripe recorded one by one."""
    page = type("P", (), {"business": business})()
    invoice = billing._invoice(page, stripe_invoice, stripe_invoice["number"], contact_id)
    invoice.full_clean()
    invoice.save()
    apply.invoice_apply_stripe(invoice=invoice, stripe_invoice=stripe_invoice)
    return invoice


_SKIP = {"id", "business", "created_at", "updated_at", "stripe_invoice_id", "stripe_payment_intent_id",
         "stripe_charge_id", "invoice", "bill_to", "number", "stripe_number", "stripe_customer_id",
         "hosted_invoice_url", "invoice_pdf_url"}


def _values(row):
    return {f.name: getattr(row, f.attname) for f in type(row)._meta.concrete_fields if f.name not in _SKIP}


def test_import_payments_leave_what_the_webhooks_leave(business_a, business_b):
    job = _job(business_a, "acct_imp")
    _run(job, "customers", [_customer("cus_a", "a@example.test")])
    invoices = [_invoice("in_a1", "cus_a", status="paid", paid=10000),
                _invoice("in_a2", "cus_a", status="paid", paid=5000, total=5000)]
    intents = [_intent("pi_a1", 10000, refunded=2500), _intent("pi_a2", 5000)]
    _run(job, "invoices", invoices)
    _run(job, "invoice_payments", [_link("in_a1", "pi_a1"), _link("in_a2", "pi_a2")])
    with CaptureQueriesContext(db_connection) as queries:  # a fixed number, the rules' lookup included
        _run(job, "payments", [*intents, _intent("pi_unapplied", 700)])
    assert job.counts["payments"]["created"] == 2
    assert job.counts["payments"]["reasons"] == {"skipped: unapplied payment (pays no imported invoice)": 1}
    # 11: the new payments' pks are read back by their PaymentIntent id (crm.bulk.insert_many)
    assert len(queries) <= 11, "\n".join(q["sql"][:150] for q in queries)
    # The paid invoices are locked by pk, not in the model's -created_at order (which made
    # SQLite read all the business's invoices by (business, created_at) for each page).
    locking = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and 'FROM "finance_invoice" WHERE' in q["sql"]
               and '"finance_invoice"."id" IN' in q["sql"]]
    assert len(locking) == 1 and locking[0].split(" ORDER BY ")[1].startswith('"finance_invoice"."id"'), locking

    # The same objects through the webhooks' functions, in another business.
    contact = IndividualFactory(business=business_b, email="a@example.test")
    for stripe_invoice, intent in zip(invoices, intents):
        theirs = {**stripe_invoice, "id": "wh_" + stripe_invoice["id"]}
        webhook_invoice = _invoice_by_webhooks(business_b, theirs, contact.pk)
        charge = {**intent["latest_charge"], "id": "wh_" + intent["latest_charge"]["id"]}
        webhook_payment, _ = apply.payment_apply_intent(
            invoice=webhook_invoice, intent={**intent, "id": "wh_" + intent["id"], "latest_charge": charge})
        apply.invoice_refresh_refunded(invoice=webhook_invoice)
        imported = Invoice.objects.get(stripe_invoice_id=stripe_invoice["id"])
        webhook_invoice.refresh_from_db()
        assert _values(imported) == _values(webhook_invoice)
        assert _values(imported.payments.get()) == _values(Payment.objects.get(pk=webhook_payment.pk))
    assert Invoice.objects.get(stripe_invoice_id="in_a1").amount_refunded == Decimal("25.00")


def test_refund_page_finds_payments_by_charge_or_intent(business_a):
    job = _job(business_a, "acct_refunds")
    _run(job, "customers", [_customer("cus_r", "r@example.test")])
    _run(job, "invoices", [_invoice("in_r", "cus_r", status="paid", paid=10000)])
    _run(job, "invoice_payments", [_link("in_r", "pi_r")])
    _run(job, "payments", [_intent("pi_r", 10000, refunded=2500)])
    refund = {"object": "refund", "currency": "usd", "status": "succeeded", "reason": "requested_by_customer"}
    page = [{**refund, "id": "re_1", "charge": "ch_pi_r", "amount": 1500},
            {**refund, "id": "re_2", "payment_intent": "pi_r", "amount": 1000},
            {**refund, "id": "re_x", "charge": "ch_unknown", "amount": 100}]
    _run(job, "refunds", page)
    counts = job.counts["refunds"]
    assert (counts["created"], counts["skipped"]) == (2, 1)
    payment = Payment.objects.get(stripe_payment_intent_id="pi_r")
    assert sorted(payment.refunds.values_list("stripe_refund_id", "amount")) == [
        ("re_1", Decimal("15.000")), ("re_2", Decimal("10.000"))]
    assert Invoice.objects.get(stripe_invoice_id="in_r").amount_refunded == Decimal("25.00")


def _by_clean_fields(row) -> str:
    """The verdict `_invalid` gives, written as clean_fields alone gives it."""
    try:
        row.clean_fields(exclude=billing._UNCHECKED[type(row)])
    except ValidationError as exc:
        return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items())[:200]
    return ""


_BAD_OR_ODD = {  # field -> values from Stripe, each tried on an otherwise valid row
    "currency": ["usd", " eur ", "US", "XXX", "", None, 12],
    "collection_method": ["charge_automatically", "bogus", "", None],
    "stripe_invoice_id": ["x" * 255, "x" * 256, "", None, "in_\x00"],
    "stripe_payment_intent_id": ["pi_é", "x" * 256, "", None],
    "stripe_number": ["é" * 64, "é" * 65, ""],
    "hosted_invoice_url": ["https://ok.example.test/i/1", "not a url", "", "https://" + "a" * 600 + ".test", None],
    "subtotal": [Decimal("1.001"), Decimal("1E+20"), Decimal("-0.00"), Decimal("NaN"), 12, "12.5", "x", None],
    "amount": [Decimal("99999999.99"), Decimal("1E+3"), Decimal("0.1234"), None],
}


def test_invalid_gives_clean_fields_verdicts_and_values(business_a):
    """Valid rows, each checked field with values Django accepts, cleans or refuses:
    `_invalid` says what clean_fields says and leaves the row as clean_fields leaves it."""
    contact = IndividualFactory(business=business_a)
    invoice = Invoice.objects.create(business=business_a, number="INV-1", bill_to=contact, currency="USD")

    def rows(name, value):
        made = [Invoice(business=business_a, number="N-1", bill_to=contact, currency="USD", subtotal=Decimal("10.50"),
                        total=Decimal("10.5"), stripe_invoice_id="in_1", hosted_invoice_url="https://x.example.test/1"),
                Payment(business=business_a, invoice=invoice, currency="USD", amount=Decimal("10.50"),
                        stripe_payment_intent_id="pi_1", stripe_charge_id="ch_1")]
        for row in made:
            if name in billing._CHECKED[type(row)]:
                setattr(row, name, value)
        return made

    verdicts = []
    for name, values in _BAD_OR_ODD.items():
        for value in values:
            for ours, theirs in zip(rows(name, value), rows(name, value)):
                verdict = billing._invalid(ours)
                assert verdict == _by_clean_fields(theirs), (type(ours).__name__, name, value)
                fields = billing._CHECKED[type(ours)]
                assert [repr(getattr(ours, f)) for f in fields] == [repr(getattr(theirs, f)) for f in fields]
                verdicts.append(verdict)
    assert "" in verdicts and len(set(verdicts)) > 10  # accepted and refused, for many reasons


def test_invalid_accepts_a_valid_row_without_clean_fields(business_a):
    """The common case is decided by the fields' own steps (what made the page's checks
    cost more than its writes); a refused value still gets Django's message."""
    contact = IndividualFactory(business=business_a)
    row = Invoice(business=business_a, number="N-1", bill_to=contact, currency="usd", subtotal=Decimal("10.50"),
                  stripe_invoice_id="in_1", collection_method="send_invoice",
                  hosted_invoice_url="https://x.example.test/1")
    with mock.patch.object(Invoice, "clean_fields", autospec=True, side_effect=Invoice.clean_fields) as clean_fields:
        assert billing._invalid(row) == "" and row.currency == "USD"
        assert clean_fields.call_count == 0
        row.subtotal = Decimal("0.0001")
        assert billing._invalid(row) == "subtotal: Ensure that there are no more than 3 decimal places."
        assert clean_fields.call_count == 1
