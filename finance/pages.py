"""Finance pages of the staff UI, and finance's sections of crm's pages.

The billables list is read-only and open to every member (staff see what is billed to
their contacts); changing billables is for the finance and owner roles, in the admin. The
invoice page is read-only too: the actions Stripe allows on it come from the page
context that `stripe_integration` registers ("invoice_detail"). The `*_context`
functions fill crm's home, contact, opportunity and ticket pages (`crm.page_context`),
registered in `FinanceConfig.ready()`.
"""
from django.http import Http404
from django.shortcuts import render
from django.views import View

from crm.page_context import page_context
from crm.tenancy import MemberRequiredMixin
from crm.views import FilteredListView, preview
from finance import reports, selectors
from finance.filters import BillableFilter
from finance.models import Invoice


class BillableListView(FilteredListView):
    template_name = "ui/billable_list.html"
    filterset_class = BillableFilter
    selector = staticmethod(selectors.billable_list)
    title = "Billables"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["unbilled"] = selectors.unbilled_totals(business=self.business)
        return context


class InvoiceDetailView(MemberRequiredMixin, View):
    def get(self, request, pk, extra_context=None, status=200):
        # extra_context/status: a higher app's view that re-shows this page with its form's
        # errors (stripe_integration's "Mark paid outside Stripe").
        invoice = Invoice.objects.for_business(self.business).select_related("bill_to", "business").filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice in this business.")
        return render(request, "ui/invoices/detail.html", {
            "title": invoice.number, "invoice": invoice,
            "lines": list(invoice.lines.select_related("service").order_by("position", "pk")),
            "actions": [],  # the integration's actions, if any, replace this (page_context)
            **page_context("invoice_detail", invoice=invoice, membership=self.membership),
            **(extra_context or {}),
        }, status=status)


# --- finance's sections of crm's pages --------------------------------------------------

def home_context(*, business) -> dict:
    return {
        "invoice_counts": selectors.invoice_counts(business=business),
        "money_owed": reports.money_owed(business=business, today=selectors.today()),
        "unbilled": selectors.unbilled_totals(business=business),
    }


def contact_detail_context(*, business, contact) -> dict:
    billables, more_billables = preview(selectors.billable_list(business=business, bill_to=contact))
    invoices, more_invoices = preview(selectors.invoice_list(business=business, bill_to=contact))
    payments, more_payments = preview(selectors.payment_list(business=business, bill_to=contact))
    return {
        "billables": billables, "more_billables": more_billables,
        "invoices": invoices, "more_invoices": more_invoices,
        "payments": payments, "more_payments": more_payments,
        "unbilled": selectors.unbilled_totals(business=business, bill_to=contact),
    }


def opportunity_detail_context(*, business, opportunity) -> dict:
    billables, more = preview(selectors.billable_list(business=business, opportunity=opportunity))
    return {"billables": billables, "more_billables": more}


def ticket_detail_context(*, business, ticket) -> dict:
    billables, more = preview(selectors.billable_list(business=business, ticket=ticket))
    return {"billables": billables, "more_billables": more}
