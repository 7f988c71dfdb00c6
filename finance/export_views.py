"""Export buttons of the staff UI: CSV or XLSX of what a page shows, filtered as on
screen (the page's own FilterSet, sort and querystring; no pagination: every row).

  /exports/invoices.csv?<Invoices page's query>   the invoices listed
  /exports/payments.csv?<Invoices page's query>   the payments of those invoices
  /exports/refunds.csv?<Invoices page's query>    the refunds of those invoices' payments
  /exports/billables.csv?<Billables page's query> the billables listed

Finance and owner roles only; the business is the member's, never the request's.
Filters that do not validate are a 400 with the reason, not an empty file.
"""
from django.http import Http404, HttpResponseBadRequest
from django.views import View

from crm.tenancy import MemberRequiredMixin

from finance import selectors
from finance.modes import current_livemode
from finance.exports import EXPORTS, FORMATS, export_response
from finance.filters import BillableFilter, InvoiceFilter
from finance.models import Payment, Refund


def _query(request):
    data = request.GET.copy()
    for name in ("page", "sort"):
        data.pop(name, None)
    return data


class ExportView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request, kind, fmt):
        if kind not in EXPORTS or fmt not in FORMATS:
            raise Http404("No such export.")
        data = _query(request)
        filterset_class = BillableFilter if kind == "billables" else InvoiceFilter
        if data:
            filterset = filterset_class(data, business=self.business)
            if not filterset.is_valid():
                reasons = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.errors.items())
                return HttpResponseBadRequest(f"These filters are not valid, nothing was exported: {reasons}",
                                              content_type="text/plain; charset=utf-8")
        return export_response(kind, fmt, self.queryset(kind, data))

    def queryset(self, kind, data):
        if kind == "billables":
            return selectors.billable_list(business=self.business, filters=data)
        invoices = selectors.invoice_list(business=self.business, filters=data, sort=self.request.GET.get("sort"),
                                          livemode=current_livemode(self.request, self.business))
        if kind == "invoices":
            return invoices
        ids = invoices.order_by().values("pk")
        if kind == "payments":
            return Payment.objects.for_business(self.business).filter(invoice__in=ids).order_by("created_at", "pk")
        return (Refund.objects.for_business(self.business).filter(payment__invoice__in=ids)
                .order_by("created_at", "pk"))
