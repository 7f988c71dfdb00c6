"""The "Refund / credit note" screens: the staff UI's form on the invoice page and the
admin's page, with their confirmation steps; hostile input gets form errors, never a 500;
roles and businesses are kept apart. Against the sandbox over HTTP."""
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from finance.models import CreditNote, CreditNotePushStatus
from stripe_integration.tests.test_credit_notes_issue import _fast_retries, paid, pushed  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db

D = Decimal


def _action(invoice):
    return reverse("ui:invoice_credit_note", args=[invoice.pk])


def _review(client, invoice, **fields):
    data = {"cn-amount": "10", "cn-mode": "refund", "cn-reason": "", "cn-memo": "", **fields}
    return client.post(_action(invoice), data)


def test_credit_note_page_review_then_confirm(paid, client, finance_a):
    conn, invoice, s = paid
    client.force_login(finance_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert "data-credit-note-form" in page and 'value="refund"' in page and 'value="credit"' in page
    review = _review(client, invoice, **{"cn-amount": "15.5", "cn-mode": "credit", "cn-memo": "Goodwill"})
    html = review.content.decode()
    assert review.status_code == 200 and "credit balance in Stripe" in html
    assert "<dt>Customer credit</dt><dd>15.50 USD</dd>" in html and "Refunded" not in html  # Stripe's preview
    assert CreditNote.objects.count() == 0  # nothing is made before Confirm
    key = re.search(r'name="cn-request_key" value="([0-9a-f]{32})"', html).group(1)
    done = _review(client, invoice, **{"cn-amount": "15.50", "cn-mode": "credit", "cn-memo": "Goodwill",
                                       "cn-request_key": key, "confirm": "yes"})
    assert done.status_code == 302
    note = CreditNote.objects.get()
    assert note.push_status == CreditNotePushStatus.PUSHED and note.credit_amount == D("15.50")
    assert note.memo == "Goodwill" and note.created_by == finance_a


@pytest.mark.parametrize("fields,error_field", [
    ({"cn-amount": "abc"}, "amount"),
    ({"cn-amount": "-1"}, "amount"),
    ({"cn-amount": "0"}, "amount"),
    ({"cn-amount": "1.234"}, "amount"),
    ({"cn-amount": "1" * 40}, "amount"),
    ({"cn-amount": "sNaN"}, "amount"),
    ({"cn-amount": "250"}, "amount"),
    ({"cn-mode": "pre_payment"}, "mode"),
    ({"cn-mode": "steal"}, "mode"),
    ({"cn-reason": "<script>"}, "reason"),
    ({"cn-memo": "x" * 501}, "memo"),
    ({"cn-amount": ""}, "amount"),
])
def test_credit_note_page_hostile_input_is_a_form_error(paid, client, finance_a, stripe_env, fields, error_field):
    conn, invoice, s = paid
    client.force_login(finance_a)
    stripe_env.mark()
    response = _review(client, invoice, **fields, **({"confirm": "yes", "cn-request_key": "k"} if len(fields) < 2 else {}))
    assert response.status_code == 400
    assert f'data-error="{error_field}"' in response.content.decode()
    assert CreditNote.objects.count() == 0
    assert [r for r in stripe_env.requests(method="POST") if "credit_notes" in r["path"]] == []


def test_credit_note_page_refused_to_staff_and_other_businesses(paid, client, staff_a, finance_b):
    conn, invoice, s = paid
    client.force_login(staff_a)
    assert "data-credit-note-form" not in client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert _review(client, invoice).status_code == 403
    client.force_login(finance_b)
    assert _review(client, invoice).status_code == 404
    assert CreditNote.objects.count() == 0


def test_credit_note_failed_is_shown_with_retry(paid, client, finance_a, stripe_env):
    conn, invoice, s = paid
    client.force_login(finance_a)
    stripe_env.fault(r"^POST /v1/credit_notes$", kind="500")
    done = _review(client, invoice, **{"cn-request_key": "a" * 32, "confirm": "yes"})
    assert done.status_code == 302
    note = CreditNote.objects.get()
    assert note.push_status == CreditNotePushStatus.FAILED
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert f'data-credit-note-retry="{note.pk}"' in page
    stripe_env.clear_faults()
    assert client.post(_action(invoice), {"retry": str(note.pk)}).status_code == 302
    note.refresh_from_db()
    assert note.push_status == CreditNotePushStatus.PUSHED
    assert client.post(_action(invoice), {"retry": "nope"}).status_code == 404


def test_credit_note_admin_page_review_confirm_and_read_only_list(paid, client, finance_a):
    conn, invoice, s = paid
    client.force_login(finance_a)
    change = reverse("admin:finance_invoice_change", args=[invoice.pk])
    assert "data-admin-credit-note" in client.get(change).content.decode()
    url = reverse("admin:finance_invoice_credit_note", args=[invoice.pk])
    bad = client.post(url, {"cn-amount": "9999", "cn-mode": "refund"})
    assert bad.status_code == 400 and 'data-error="amount"' in bad.content.decode()
    review = client.post(url, {"cn-amount": "20", "cn-mode": "refund", "cn-reason": "duplicate"})
    html = review.content.decode()
    assert review.status_code == 200 and "Stripe refunds 20.00 USD" in html
    key = re.search(r'name="cn-request_key" value="([0-9a-f]{32})"', html).group(1)
    data = {"cn-amount": "20.00", "cn-mode": "refund", "cn-reason": "duplicate", "cn-request_key": key, "confirm": "yes"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # a double click
    note = CreditNote.objects.get()
    assert note.refund_amount == D("20") and note.push_status == CreditNotePushStatus.PUSHED
    # The credit note admin is read-only: no add, no delete, no edits.
    assert client.get(reverse("admin:finance_creditnote_add")).status_code == 403
    assert client.get(reverse("admin:finance_creditnote_changelist")).status_code == 200
    detail = client.get(reverse("admin:finance_creditnote_change", args=[note.pk]))
    assert detail.status_code == 200 and not detail.context["adminform"].form.fields
    assert client.post(reverse("admin:finance_creditnote_delete", args=[note.pk]), {"post": "yes"}).status_code == 403


def test_credit_note_full_refund_double_click_is_not_a_form_error(paid, client, finance_a):
    """The first click refunds everything; the second, with the same page's key, finds that
    credit note instead of being refused for the amount left (none)."""
    conn, invoice, s = paid
    client.force_login(finance_a)
    data = {"cn-amount": "200.00", "cn-mode": "refund", "cn-reason": "", "cn-memo": "", "cn-request_key": "b" * 32,
            "confirm": "yes"}
    assert client.post(_action(invoice), data).status_code == 302
    second = client.post(_action(invoice), data, follow=True)
    assert second.status_code == 200 and "made in Stripe" in second.content.decode()
    assert CreditNote.objects.count() == 1 and len(s.get("/v1/credit_notes", {"invoice": invoice.stripe_invoice_id})["data"]) == 1
    admin_url = reverse("admin:finance_invoice_credit_note", args=[invoice.pk])
    assert client.post(admin_url, data).status_code == 302
    assert CreditNote.objects.count() == 1


def test_credit_note_void_asks_then_voids_and_is_audited(pushed, client, finance_a):
    from crm.audit import AuditEntry
    from stripe_integration.credit_notes.issue import credit_note_create

    conn, invoice, s = pushed
    note = credit_note_create(invoice=invoice, amount="20.00", reason="", memo="", mode="pre_payment", user=finance_a)
    invoice.refresh_from_db()
    assert invoice.amount_remaining == D("180.00")
    client.force_login(finance_a)
    page = client.get(reverse("ui:invoice_detail", args=[invoice.pk])).content.decode()
    assert f'data-credit-note-void="{note.pk}"' in page

    ask = client.post(_action(invoice), {"void": str(note.pk)})
    html = ask.content.decode()
    assert ask.status_code == 200 and "amount owed goes back up by 20.00 USD" in html
    note.refresh_from_db()
    assert note.status == "issued"  # nothing voided before the explicit confirmation

    done = client.post(_action(invoice), {"void": str(note.pk), "confirmed": "yes"})
    assert done.status_code == 302
    note.refresh_from_db()
    invoice.refresh_from_db()
    assert note.status == "void" and s.get(f"/v1/credit_notes/{note.stripe_id}")["status"] == "void"
    assert invoice.amount_remaining == D("200.00")
    actions = list(AuditEntry.objects.filter(business=invoice.business).values_list("action", "user", "amount"))
    assert ("credit_note_create", finance_a.pk, D("20.00")) in actions
    assert ("credit_note_void", finance_a.pk, D("20.00")) in actions
    again = client.post(_action(invoice), {"void": str(note.pk), "confirmed": "yes"}, follow=True)
    assert "nothing to void" in again.content.decode()


@pytest.mark.parametrize("value", ["", "abc", "99999999999999999999", "-1", "0"])
def test_credit_note_void_of_no_such_note_is_404(pushed, client, finance_a, value):
    conn, invoice, s = pushed
    client.force_login(finance_a)
    assert client.post(_action(invoice), {"void": value}).status_code == 404


def test_credit_note_void_is_not_for_staff_or_another_business(pushed, client, staff_a, finance_b):
    from stripe_integration.credit_notes.issue import credit_note_create

    conn, invoice, s = pushed
    note = credit_note_create(invoice=invoice, amount="5.00", reason="", memo="", mode="pre_payment")
    for user in (staff_a, finance_b):
        client.force_login(user)
        assert client.post(_action(invoice), {"void": str(note.pk), "confirmed": "yes"}).status_code in (403, 404)
    note.refresh_from_db()
    assert note.status == "issued"


@pytest.mark.parametrize("value", ["abc", "99999999999999999999", "-1"])
def test_credit_note_retry_of_no_such_note_is_404(pushed, client, finance_a, value):
    conn, invoice, s = pushed
    client.force_login(finance_a)
    assert client.post(_action(invoice), {"retry": value}).status_code == 404
