"""Exports of invoices, payments, refunds and billables as CSV (streamed) and XLSX.

One column spec per kind (`EXPORTS`), used by the staff UI's export buttons (filtered as
on screen: the page's FilterSet and sort, `finance.export_views`) and the admin actions
(the selected rows, `finance.admin`). Amounts are plain decimals at the currency's places
(no thousands separators) beside a currency column, dates ISO 8601. A text cell that a
spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a leading quote.
"""
from __future__ import annotations

import csv
import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone

from finance.models import Billable, Invoice, Payment, Refund
from finance.money import UnsupportedCurrency, tax_places

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 2000


def csv_safe(value):
    """Text that a spreadsheet would evaluate gets a leading apostrophe (CSV injection,
    OWASP). Numbers and dates are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def plain_amount(amount, currency: str) -> Decimal | str:
    """Decimal('1234.50'), Decimal('1500'), Decimal('12.345'): the currency's finest
    places; CSV writes it as such (no separators), XLSX as a number."""
    if amount is None:
        return ""
    try:
        places = tax_places(currency)
    except UnsupportedCurrency:
        places = 2
    return Decimal(amount).quantize(Decimal(1).scaleb(-places))


def _date(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).isoformat(timespec="seconds") if timezone.is_aware(value) else value.isoformat()
    return value.isoformat()


def _money(field: str, currency: Callable = lambda obj: obj.currency):
    return lambda obj: plain_amount(getattr(obj, field), currency(obj))


@dataclass(frozen=True)
class ExportSpec:
    kind: str
    model: type
    columns: list[tuple[str, Callable]]
    select_related: tuple[str, ...]

    def rows(self, queryset: QuerySet) -> Iterator[list]:
        qs = queryset.select_related(*self.select_related)
        for obj in qs.iterator(chunk_size=CHUNK):
            yield [csv_safe(get(obj)) for _, get in self.columns]

    @property
    def headers(self) -> list[str]:
        return [name for name, _ in self.columns]


INVOICES = ExportSpec("invoices", Invoice, [
    ("number", lambda i: i.number), ("stripe_number", lambda i: i.stripe_number),
    ("contact", lambda i: i.bill_to.name), ("status", lambda i: i.status), ("currency", lambda i: i.currency),
    ("subtotal", _money("subtotal")), ("discount", _money("discount_total")), ("tax", _money("tax_total")),
    ("total", _money("total")), ("paid", _money("amount_paid")), ("refunded", _money("amount_refunded")),
    ("remaining", _money("amount_remaining")), ("issued", lambda i: _date(i.finalized_at)),
    ("due", lambda i: _date(i.due_date)), ("paid_at", lambda i: _date(i.paid_at)),
    ("disputed", lambda i: "yes" if i.disputed else "no"), ("stripe_invoice_id", lambda i: i.stripe_invoice_id or ""),
    ("created", lambda i: _date(i.created_at)),
], ("bill_to",))

PAYMENTS = ExportSpec("payments", Payment, [
    ("invoice", lambda p: p.invoice.number), ("contact", lambda p: p.invoice.bill_to.name),
    ("status", lambda p: p.status), ("method", lambda p: p.method), ("currency", lambda p: p.currency),
    ("amount", _money("amount")), ("fee", _money("fee")), ("net", _money("net")),
    ("refunded", _money("amount_refunded")), ("paid_at", lambda p: _date(p.paid_at)),
    ("card", lambda p: f"{p.card_brand} {p.card_last4}".strip()), ("reference", lambda p: p.reference),
    ("failure", lambda p: p.failure_message), ("stripe_payment_intent_id", lambda p: p.stripe_payment_intent_id or ""),
    ("stripe_charge_id", lambda p: p.stripe_charge_id or ""), ("created", lambda p: _date(p.created_at)),
], ("invoice__bill_to",))

REFUNDS = ExportSpec("refunds", Refund, [
    ("invoice", lambda r: r.payment.invoice.number), ("contact", lambda r: r.payment.invoice.bill_to.name),
    ("status", lambda r: r.status), ("currency", lambda r: r.currency), ("amount", _money("amount")),
    ("reason", lambda r: r.reason), ("stripe_refund_id", lambda r: r.stripe_refund_id or ""),
    ("stripe_charge_id", lambda r: r.payment.stripe_charge_id or ""), ("created", lambda r: _date(r.created_at)),
], ("payment__invoice__bill_to",))

BILLABLES = ExportSpec("billables", Billable, [
    ("date", lambda b: _date(b.service_date or b.created_at.date())), ("contact", lambda b: b.bill_to.name),
    ("description", lambda b: b.description), ("service", lambda b: b.service.code if b.service_id else ""),
    ("opportunity", lambda b: b.opportunity.title if b.opportunity_id else ""),
    ("ticket", lambda b: b.ticket.subject if b.ticket_id else ""),
    ("type", lambda b: b.line_type), ("status", lambda b: b.status), ("currency", lambda b: b.currency),
    ("quantity", lambda b: f"{b.quantity.normalize():f}"), ("unit_price", _money("unit_price")),
    ("discount_percent", lambda b: "" if b.discount_percent is None else f"{b.discount_percent.normalize():f}"),
    ("discount_amount", lambda b: "" if b.discount_amount is None else plain_amount(b.discount_amount, b.currency)),
    ("vat_rate", lambda b: f"{b.vat_rate.normalize():f}"),
    ("prices_include_vat", lambda b: "yes" if b.prices_include_vat else "no"),
    ("invoice", lambda b: b.invoice.number if b.invoice_id else ""), ("created", lambda b: _date(b.created_at)),
], ("bill_to", "service", "opportunity", "ticket", "invoice"))

EXPORTS = {spec.kind: spec for spec in (INVOICES, PAYMENTS, REFUNDS, BILLABLES)}
FORMATS = ("csv", "xlsx")


class _Echo:
    def write(self, value):
        return value


def _filename(kind: str, fmt: str) -> str:
    return f"{kind}-{timezone.localdate().isoformat()}.{fmt}"


def csv_response(spec: ExportSpec, queryset: QuerySet) -> StreamingHttpResponse:
    """Streamed: memory stays flat however many rows (the queryset is read in chunks)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield "\ufeff"  # BOM: spreadsheet programs then read the file as UTF-8
        yield writer.writerow(spec.headers)
        for row in spec.rows(queryset):
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(spec.kind, "csv")}"'
    return response


def xlsx_response(spec: ExportSpec, queryset: QuerySet) -> HttpResponse:
    """Built in memory by tablib (openpyxl): for the sizes a spreadsheet is opened at."""
    import tablib

    data = tablib.Dataset(headers=spec.headers, title=spec.kind)
    for row in spec.rows(queryset):
        data.append(row)
    response = HttpResponse(data.export("xlsx"), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{_filename(spec.kind, "xlsx")}"'
    return response


def export_response(kind: str, fmt: str, queryset: QuerySet):
    spec = EXPORTS[kind]
    return xlsx_response(spec, queryset) if fmt == "xlsx" else csv_response(spec, queryset)
