"""crm.bulk.insert_many writes the rows bulk_create writes."""
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.db.models import signals

from crm.bulk import insert_many
from crm.models import Individual
from crm.tests.factories import IndividualFactory
from finance.models import Invoice, InvoiceLine
from finance.tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db

_NOW = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt_timezone.utc)


def _rows(model, pks, skip):
    """The stored rows as the database gives them back, by pk, without the columns in `skip`."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id IN ({', '.join(['%s'] * len(pks))}) ORDER BY id", list(pks))
        names = [c[0] for c in cursor.description]
        return [{n: v for n, v in zip(names, row) if n not in skip} for row in cursor.fetchall()]


def _invoices(business, contact, tag):
    return [Invoice(business=business, bill_to=contact, number=f"{tag}-{n}", currency="EUR", subtotal=Decimal("12.5"),
                    total=Decimal("13.755"), custom_fields={"po": [n, "é"], "ok": True},
                    stripe_invoice_id=f"in_{tag}_{n}") for n in range(3)]


def test_insert_many_writes_what_bulk_create_writes():
    contact = IndividualFactory()
    with mock.patch("django.utils.timezone.now", return_value=_NOW):  # auto_now(_add): one instant for both
        by_bulk = Invoice.objects.bulk_create(_invoices(contact.business, contact, "b"))
        by_many = _invoices(contact.business, contact, "m")
        insert_many(by_many, key="stripe_invoice_id")
        lines_bulk = InvoiceLine.objects.bulk_create(
            [InvoiceLine(business=contact.business, invoice=i, position=1, description="x", quantity=Decimal("1.5"),
                         unit_price=Decimal("2.001"), subtotal=Decimal("3"), total=Decimal("3")) for i in by_bulk])
        lines_many = [InvoiceLine(business=contact.business, invoice=i, position=1, description="x",
                                  quantity=Decimal("1.5"), unit_price=Decimal("2.001"), subtotal=Decimal("3"),
                                  total=Decimal("3")) for i in by_many]
        insert_many(lines_many)
    assert all(i.pk and not i._state.adding for i in by_many)  # read back by the unique key
    unique = {"id", "number", "stripe_invoice_id"}
    written = _rows(Invoice, [i.pk for i in by_many], unique)
    assert written == _rows(Invoice, [i.pk for i in by_bulk], unique)
    assert Invoice.objects.get(pk=by_many[0].pk).custom_fields == {"po": [0, "é"], "ok": True}
    assert Invoice.objects.get(pk=by_many[0].pk).created_at == _NOW
    line_pks = InvoiceLine.objects.filter(invoice__in=by_many).values_list("pk", flat=True)
    assert lines_many[0].pk is None  # no key: pks not read back
    written = _rows(InvoiceLine, line_pks, {"id", "invoice_id"})
    assert written == _rows(InvoiceLine, [line.pk for line in lines_bulk], {"id", "invoice_id"})
    assert written[0]["service_id"] is None and len(written) == 3


def test_insert_many_refuses_what_it_cannot_write():
    contact = IndividualFactory()
    with pytest.raises(ValueError, match="parent rows"):  # a multi-table child without its parent row
        insert_many([Individual(business=contact.business, name="A")])
    with pytest.raises(ValueError, match="new instances"):
        insert_many([InvoiceFactory()])
    with pytest.raises(ValueError, match="unique"):
        insert_many(_invoices(contact.business, contact, "k"), key="currency")
    with pytest.raises(TypeError):
        insert_many([*_invoices(contact.business, contact, "t"), contact])
    assert not Invoice.objects.filter(number__startswith="k-").exists()


def test_insert_many_refuses_a_model_with_save_receivers():
    contact = IndividualFactory()

    def receiver(**kwargs):
        pass
    signals.post_save.connect(receiver, sender=Invoice)
    try:
        with pytest.raises(ValueError, match="signal receivers"):  # bulk_create would skip them too
            insert_many(_invoices(contact.business, contact, "s"))
    finally:
        signals.post_save.disconnect(receiver, sender=Invoice)
    insert_many(_invoices(contact.business, contact, "s"))
    assert Invoice.objects.filter(number__startswith="s-").count() == 3
