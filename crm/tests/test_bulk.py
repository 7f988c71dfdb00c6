"""crm.bulk.insert_many writes the rows bulk_create writes (and each field's value is what
its get_db_prep_save gives), on the test run's database: SQLite, and PostgreSQL in CI."""
import warnings
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.db import connection
from django.db.models import Field, signals
from django.utils.translation import gettext_lazy

from crm.bulk import _preparer, insert_many
from crm.models import ContactKind, Individual
from crm.tests.factories import IndividualFactory
from finance.models import Invoice, InvoiceLine, InvoiceStatus, Payment, PaymentStatus
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


# Values of every kind a model field meets, the edges included: None, empty and unicode
# text, choices members, lazy strings, ints and bools, Decimals of many places, negative
# zero and non-finite ones, floats, datetimes aware in UTC and in other zones and naive
# ones, dates, JSON.
_VALUES = [
    None, "", "plain", "é 日本 ☃ \U0001f600", "x" * 300, "5", InvoiceStatus.PAID, ContactKind.INDIVIDUAL,
    gettext_lazy("Draft"), 0, 7, -3, 2**40, True, False, 1.5,
    Decimal("12.5"), Decimal("12.50"), Decimal("-0.00"), Decimal("0.001"), Decimal("123456789.123456789"),
    Decimal("1E+3"), Decimal("NaN"), Decimal("Infinity"),
    _NOW, _NOW.astimezone(ZoneInfo("Asia/Kolkata")), _NOW.astimezone(dt_timezone(timedelta(hours=-3, minutes=-30))),
    _NOW.replace(tzinfo=None), date(2026, 3, 4),
    {}, [], {"é": [1, None, "日本"]}, [Decimal("1")],
]


def _outcome(prepare, value):
    """What preparing `value` gives, comparable: its type and value (a Decimal by its
    digits, a JSON adapter by what it wraps), or the exception's type."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # naive datetimes under USE_TZ
            result = prepare(value)
    except Exception as exc:  # noqa: BLE001 - both ways must fail alike
        return "raises", type(exc)
    if isinstance(result, Decimal):
        return Decimal, str(result)
    return type(result), getattr(result, "obj", result)


def test_each_field_prepares_what_its_get_db_prep_save_gives():
    """Every concrete field of every model, every value above: insert_many's preparer
    gives what Django's `get_db_prep_save` gives on this database (SQLite, or PostgreSQL
    with its typed ints and JSON adapter), or fails alike."""
    checked = 0
    for model in apps.get_models():
        for field in model._meta.local_concrete_fields:
            prepare = _preparer(field, connection)
            for value in _VALUES:
                expected = _outcome(lambda v: field.get_db_prep_save(v, connection), value)
                if expected != _outcome(lambda v: field.get_db_prep_save(v, connection), value):
                    continue  # not the same twice (an encrypted field's random IV)
                assert _outcome(prepare, value) == expected, (model._meta.label, field.name, value)
                checked += 1
    assert checked > 10_000


def test_insert_many_writes_edge_values_as_bulk_create_does():
    """Payments (choices, JSON, datetimes, Decimals) with edge values, stored both ways."""
    contact = IndividualFactory()
    invoice = InvoiceFactory(business=contact.business, bill_to=contact)

    def payments(tag):
        return [Payment(business=contact.business, invoice=invoice, currency=currency, amount=amount,
                        status=PaymentStatus.SUCCEEDED, card_brand=brand, paid_at=paid_at, custom_fields=custom,
                        stripe_payment_intent_id=f"pi_{tag}_{n}", reference="é 日本 ☃", fee=Decimal("-0.00"),
                        net=Decimal("123456789.123456789"))
                for n, (currency, amount, brand, paid_at, custom) in enumerate([
                    ("usd", Decimal("12.5"), "", _NOW, {}),
                    ("EUR ", Decimal("0.001"), "visa", _NOW.astimezone(ZoneInfo("Asia/Kolkata")), {"k": ["é", None]}),
                    ("JPY", Decimal("1E+3"), "amex", None, []),
                    ("KWD", Decimal("-7.125"), "ünï", _NOW.replace(tzinfo=None), {"n": 1.5}),
                ])]
    with mock.patch("django.utils.timezone.now", return_value=_NOW), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the naive paid_at, both ways
        by_bulk = Payment.objects.bulk_create(payments("b"))
        by_many = payments("m")
        insert_many(by_many, key="stripe_payment_intent_id")
    unique = {"id", "stripe_payment_intent_id"}
    written = _rows(Payment, [p.pk for p in by_many], unique)
    assert written == _rows(Payment, [p.pk for p in by_bulk], unique)
    assert [row["currency"] for row in written] == ["USD", "EUR", "JPY", "KWD"]  # the field's to_python
    assert Payment.objects.get(pk=by_many[1].pk).paid_at == _NOW


def test_insert_many_asks_fields_only_for_values_it_cannot_prepare_itself():
    """Strs, ints, aware datetimes and Decimals are prepared without the fields'
    get_db_prep_save (what made insert_many cost more than its SQL); JSON still asks it."""
    contact = IndividualFactory()
    invoice = InvoiceFactory(business=contact.business, bill_to=contact)
    lines = [InvoiceLine(business=contact.business, invoice=invoice, position=n, description="é",
                         quantity=Decimal("1.5"), unit_price=Decimal("2.001"), subtotal=Decimal("3"), total=Decimal("3"))
             for n in range(3)]
    with mock.patch.object(Field, "get_db_prep_save", autospec=True, side_effect=Field.get_db_prep_save) as asked:
        insert_many(lines)
        assert asked.call_count == 0
        insert_many(_invoices(contact.business, contact, "j"))
        assert {call.args[0].name for call in asked.call_args_list} <= {"custom_fields", "push_mismatch"}
    assert InvoiceLine.objects.filter(invoice=invoice).count() == 3
