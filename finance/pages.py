"""Finance pages of the staff UI, and finance's sections of crm's pages.

The billables list is open to every member, with the form to add one (staff record
billables: finance.billable_views); invoicing them is for the finance and owner roles. The
invoice page is read-only too: the actions Stripe allows on it come from the page
context that `stripe_integration` registers ("invoice_detail"). The `*_context`
functions fill crm's home, contact, opportunity and ticket pages (`crm.page_context`),
registered in `FinanceConfig.ready()`.
"""
from django import forms
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from crm.audit import audit_for_object
from crm.page_context import page_context
from crm.tenancy import MemberRequiredMixin
from crm.views import FilteredListView, preview
from finance import reports, selectors
from finance.modes import current_livemode
from finance.billable_views import billable_form_for, create_url
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
        context["billable_form"] = billable_form_for(business=self.business)
        context["billable_create_url"] = create_url()
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


class DisputeListForm(forms.Form):
    show = forms.ChoiceField(choices=[("open", "Open"), ("lost", "Lost"), ("won", "Won"), ("all", "All")],
                             required=False)
    order = forms.ChoiceField(choices=[("due", "Due soonest first"), ("-due", "Due latest first")], required=False)


class DisputeListView(MemberRequiredMixin, View):
    """Disputes with their evidence deadlines (open ones by default), for finance staff:
    responding is done in Stripe, before the deadline."""

    finance_required = True

    def get(self, request):
        form = DisputeListForm(request.GET or None)
        if request.GET and not form.is_valid():
            return render(request, "ui/dispute_list.html", {"title": "Disputes", "form": form, "disputes": []},
                          status=400)
        show = (form.cleaned_data.get("show") if form.is_bound else "") or "open"
        order = (form.cleaned_data.get("order") if form.is_bound else "") or "due"
        disputes = selectors.dispute_list(business=self.business, show=show, order=order)
        return render(request, "ui/dispute_list.html", {
            "title": "Disputes", "form": form, "show": show, "order": order, "disputes": disputes[:500],
            "now": timezone.now(),
        })


def invoice_history_context(*, invoice, membership) -> dict:
    """The invoice page's history: the audit entries about it, oldest first: created,
    push attempts and their outcomes, Stripe events and what each changed, actions and
    who took them (crm.audit; the integration writes most of them)."""
    return {"history": list(audit_for_object(business=invoice.business, obj=invoice))}


# --- finance's sections of crm's pages --------------------------------------------------

def home_context(*, business, request=None) -> dict:
    livemode = current_livemode(request, business) if request is not None else None
    return {
        "invoice_counts": selectors.invoice_counts(business=business, livemode=livemode),
        "money_owed": reports.money_owed(business=business, today=selectors.today(), livemode=livemode),
        "unbilled": selectors.unbilled_totals(business=business),
    }


def contact_detail_context(*, business, contact, request=None) -> dict:
    livemode = current_livemode(request, business) if request is not None else None
    billables, more_billables = preview(selectors.billable_list(business=business, bill_to=contact))
    invoices, more_invoices = preview(selectors.invoice_list(business=business, bill_to=contact, livemode=livemode))
    payments, more_payments = preview(selectors.payment_list(business=business, bill_to=contact, livemode=livemode))
    return {
        "billables": billables, "more_billables": more_billables,
        "invoices": invoices, "more_invoices": more_invoices,
        "payments": payments, "more_payments": more_payments,
        "unbilled": selectors.unbilled_totals(business=business, bill_to=contact),
    }


def opportunity_detail_context(*, business, opportunity) -> dict:
    billables, more = preview(selectors.billable_list(business=business, opportunity=opportunity))
    return {"billables": billables, "more_billables": more,
            "billable_form": billable_form_for(business=business, opportunity=opportunity),
            "billable_create_url": create_url(opportunity=opportunity)}


def ticket_detail_context(*, business, ticket) -> dict:
    billables, more = preview(selectors.billable_list(business=business, ticket=ticket))
    return {"billables": billables, "more_billables": more,
            "billable_form": billable_form_for(business=business, ticket=ticket),
            "billable_create_url": create_url(ticket=ticket)}
