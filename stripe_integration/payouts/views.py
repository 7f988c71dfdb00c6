"""Staff UI pages of payouts (finance and owner roles): the list with filters, a payout's
page (its charges, refunds, disputes and fees, each against its CRM invoice, with the
totals that must equal the payout), the exceptions list, and a payout's CSV export
(streamed, amounts at the currency's places). Reads through `selectors`; another
business's payout is a 404."""
from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.views import View

from crm.tenancy import MemberRequiredMixin
from finance.exports import ExportSpec, csv_response, plain_amount
from finance.modes import current_livemode

from ..models import Payout, PayoutItem, PayoutStatus
from . import selectors

PAGE_SIZE = 50


class PayoutFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *PayoutStatus.choices], required=False)
    currency = forms.RegexField(regex=r"^[A-Za-z]{3}$", required=False, max_length=3,
                                error_messages={"invalid": "A three-letter currency code."})
    arrival_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    arrival_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    exceptions = forms.BooleanField(required=False, label="With exceptions only")


class PayoutListView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request):
        form = PayoutFilterForm(request.GET or None)
        if form.is_bound and not form.is_valid():
            return render(request, "stripe_integration/payouts/list.html",
                          {"title": "Payouts", "form": form, "payouts": []}, status=400)
        filters = form.cleaned_data if form.is_bound else {}
        page = Paginator(selectors.payout_list(business=self.business, filters=filters,
                                                 livemode=current_livemode(request, self.business)), PAGE_SIZE).get_page(
            request.GET.get("page"))
        return render(request, "stripe_integration/payouts/list.html", {
            "title": "Payouts", "form": form, "payouts": page.object_list, "page_obj": page,
            "paginator": page.paginator, "is_paginated": page.has_other_pages(),
        })


class _PayoutMixin(MemberRequiredMixin):
    finance_required = True

    def payout(self, pk) -> Payout:
        try:
            return selectors.payout_get(business=self.business, pk=pk)
        except Payout.DoesNotExist:
            raise Http404("No such payout in this business.") from None


class PayoutDetailView(_PayoutMixin, View):
    def get(self, request, pk):
        payout = self.payout(pk)
        items = list(selectors.payout_items(payout=payout))
        return render(request, "stripe_integration/payouts/detail.html", {
            "title": f"Payout {payout.stripe_id}", "payout": payout, "items": items,
        })


class PayoutExceptionsView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request):
        return render(request, "stripe_integration/payouts/exceptions.html", {
            "title": "Payout exceptions",
            "items": selectors.exception_items(business=self.business,
                                               livemode=current_livemode(request, self.business))[:500],
            "unbalanced": selectors.unbalanced_payouts(business=self.business,
                                                       livemode=current_livemode(request, self.business))[:100],
        })


def _invoice_number(item: PayoutItem) -> str:
    return item.invoice.number if item.invoice_id else ""


def _contact(item: PayoutItem) -> str:
    return item.invoice.bill_to.name if item.invoice_id else ""


ITEM_COLUMNS = [
    ("type", lambda i: i.type), ("balance_transaction", lambda i: i.stripe_balance_transaction_id),
    ("source", lambda i: i.source_id), ("charge", lambda i: i.charge_id),
    ("invoice", _invoice_number), ("contact", _contact), ("currency", lambda i: i.currency),
    ("amount", lambda i: plain_amount(i.amount, i.currency)), ("fee", lambda i: plain_amount(i.fee, i.currency)),
    ("net", lambda i: plain_amount(i.net, i.currency)), ("fee_description", lambda i: i.fee_description),
    ("description", lambda i: i.description), ("exception", lambda i: i.exception),
    ("exception_detail", lambda i: i.exception_detail),
]


class PayoutExportView(_PayoutMixin, View):
    def get(self, request, pk):
        payout = self.payout(pk)
        if request.GET.get("format", "csv") != "csv":
            return HttpResponseBadRequest("Payouts export as CSV only.", content_type="text/plain; charset=utf-8")
        spec = ExportSpec(f"payout-{payout.stripe_id}", PayoutItem, ITEM_COLUMNS, ("invoice__bill_to",))
        return csv_response(spec, selectors.payout_items(payout=payout))
