"""The billing overview page of the staff UI (`ui:dashboard`, finance and owner roles).

Figures from finance.dashboard (per currency, by month), each shown as a table, and as a
chart drawn by Chart.js (vendored, served from finance/static; see its README) from the
same figures passed with `json_script`: the page is complete without JavaScript. The
integration-health panel comes from whatever registered the "dashboard" page context
(stripe_integration.health), so finance imports nothing of Stripe.
"""
from django.views.generic import TemplateView

from crm.page_context import page_context
from crm.tenancy import MemberRequiredMixin
from finance import dashboard, selectors
from finance.modes import current_livemode
from finance.exports import plain_amount


def chart_data(overview) -> dict:
    """{currency: {"labels": ["2026-01", ...], "series": {figure: ["123.45", ...]}}}.
    Amounts as decimal strings (exact); the chart turns them into numbers to draw."""
    data = {}
    for cf in overview:
        months = list(cf.months)
        data[cf.currency] = {
            "labels": [m.strftime("%Y-%m") for m in months],
            "series": {name: [str(plain_amount(cf.months[m][name], cf.currency)) for m in months]
                       for name in ("invoiced", "collected", "refunded", "outstanding", "overdue")},
        }
    return data


class DashboardView(MemberRequiredMixin, TemplateView):
    template_name = "ui/dashboard.html"
    finance_required = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = selectors.today()
        livemode = current_livemode(self.request, self.business)
        overview = dashboard.billing_overview(business=self.business, today=today, livemode=livemode)
        top = dashboard.top_contacts(business=self.business, today=today, livemode=livemode)
        for cf in overview:
            cf.top_contacts = top.get(cf.currency, [])
        context.update(
            title="Billing overview", today=today, overview=overview, chart_data=chart_data(overview),
            months=dashboard.MONTHS, figures=dashboard.FIGURES,
            **page_context("dashboard", business=self.business, membership=self.membership, livemode=livemode),
        )
        return context
