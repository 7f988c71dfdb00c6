"""The Disputes page, the dispute rows of an invoice's payment history, the read-only
Dispute admin."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from finance.models import Dispute, PaymentStatus
from finance.tests.factories import DisputeFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
URL = "/disputes/"


def _dispute(business, *, days, status="needs_response", **kwargs):
    invoice = InvoiceFactory(business=business, status="paid", amount_paid=Decimal("100.00"))
    payment = PaymentFactory(invoice=invoice, status=PaymentStatus.SUCCEEDED)
    due = timezone.now() + timedelta(days=days) if days is not None else None
    return DisputeFactory(payment=payment, status=status, evidence_due_by=due, **kwargs)


def _rows(page):
    import re
    return re.findall(r'data-dispute="(dp_[^"]+)"', page)


def test_dispute_list_shows_open_disputes_soonest_deadline_first(client, finance_a, business_a, business_b):
    late, soon, none = _dispute(business_a, days=9), _dispute(business_a, days=2), _dispute(business_a, days=None)
    _dispute(business_a, days=1, status="lost")
    _dispute(business_b, days=1)  # another business's
    client.force_login(finance_a)
    page = client.get(URL).content.decode()
    assert _rows(page) == [soon.stripe_id, late.stripe_id, none.stripe_id]
    assert _rows(client.get(URL, {"order": "-due"}).content.decode()) == [late.stripe_id, soon.stripe_id, none.stripe_id]
    assert 'href="/disputes/"' in page  # in the nav


def test_dispute_list_past_due_is_marked(client, finance_a, business_a):
    _dispute(business_a, days=-1)
    client.force_login(finance_a)
    assert "data-overdue" in client.get(URL).content.decode()


def test_dispute_list_filters_by_outcome(client, finance_a, business_a):
    lost = _dispute(business_a, days=1, status="lost")
    won = _dispute(business_a, days=1, status="won")
    client.force_login(finance_a)
    assert _rows(client.get(URL, {"show": "lost"}).content.decode()) == [lost.stripe_id]
    assert sorted(_rows(client.get(URL, {"show": "all"}).content.decode())) == sorted([lost.stripe_id, won.stripe_id])


@pytest.mark.parametrize("params", [{"show": "everything"}, {"order": "'; drop table"}, {"show": "x" * 5000}])
def test_dispute_list_hostile_query_is_a_400_with_the_reason(client, finance_a, business_a, params):
    client.force_login(finance_a)
    response = client.get(URL, params)
    assert response.status_code == 400 and "data-errors" in response.content.decode()


def test_dispute_list_is_for_finance_roles(client, staff_a):
    client.force_login(staff_a)
    assert client.get(URL).status_code == 403


def test_invoice_page_shows_its_payments_disputes(client, staff_a, business_a):
    dispute = _dispute(business_a, days=3, status="lost", fee=Decimal("15.00"))
    invoice = dispute.invoice
    invoice.disputed, invoice.amount_disputed = True, Decimal("100.00")
    invoice.save()
    client.force_login(staff_a)
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert f'data-payment-dispute="{dispute.stripe_id}"' in page and 'data-dispute-status="lost"' in page
    assert "data-amount-disputed" in page and "A dispute was lost" in page
    assert "data-net-paid" in page


def test_invoice_page_shows_processing_debit_with_its_method(client, staff_a, business_a):
    invoice = InvoiceFactory(business=business_a, status="open")
    PaymentFactory(invoice=invoice, status=PaymentStatus.PROCESSING, method="bank", method_type="us_bank_account",
                   amount=Decimal("42.00"))
    client.force_login(staff_a)
    page = client.get(f"/invoices/{invoice.pk}/").content.decode()
    assert "data-processing" in page and "ACH debit, 42.00 USD" in page and 'data-status="open"' in page


def test_dispute_admin_is_read_only_and_scoped(client, finance_a, business_a, business_b):
    mine, theirs = _dispute(business_a, days=1), _dispute(business_b, days=1)
    finance_a.is_staff = True
    finance_a.save()
    client.force_login(finance_a)
    listing = client.get("/admin/finance/dispute/").content.decode()
    assert mine.stripe_id in listing and theirs.stripe_id not in listing
    assert client.get("/admin/finance/dispute/add/").status_code == 403
    response = client.post(f"/admin/finance/dispute/{mine.pk}/change/", {"status": "won"})
    assert Dispute.objects.get(pk=mine.pk).status == "needs_response"
    assert response.status_code in (200, 403)
