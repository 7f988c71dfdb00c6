"""The aging report of the staff UI (issue 14): what open invoices still owe, by days
past due (current, 1-30, 31-60, 61-90, over 90), per currency and per contact.

Finance and owner roles only. Figures from finance.reports (one aggregate query each);
the per-contact rows are paginated.
"""
from django.core.paginator import Paginator
from django.views.generic import TemplateView

from crm.tenancy import MemberRequiredMixin
from finance import reports, selectors
from finance.modes import current_livemode

CONTACT_ROWS_PER_PAGE = 50


class AgingReportView(MemberRequiredMixin, TemplateView):
    template_name = "ui/aging.html"
    finance_required = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = selectors.today()
        livemode = current_livemode(self.request, self.business)
        by_currency = reports.aging_by_currency(business=self.business, today=today, livemode=livemode)
        currencies = [row["currency"] for row in by_currency]
        currency = self.request.GET.get("currency", "").upper()
        if currency not in currencies:
            currency = ""  # unknown or none: every currency
        contacts = reports.aging_by_contact(business=self.business, today=today, currency=currency or None,
                                            livemode=livemode)
        page = Paginator(contacts, CONTACT_ROWS_PER_PAGE).get_page(self.request.GET.get("page"))
        context.update(
            title="Aging report", today=today, currency=currency, currencies=currencies,
            buckets=reports.aging_buckets(today=today), by_currency=by_currency,
            page_obj=page, paginator=page.paginator, is_paginated=page.has_other_pages(),
            contact_rows=page.object_list,
        )
        return context
