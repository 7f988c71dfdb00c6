"""The Invoices page of the staff UI (issue 14): every invoice of the business with
filters (finance.filters.InvoiceFilter), search, sortable columns and pagination.

Reads through finance.selectors.invoice_list; a fixed number of queries per page
whatever its size (tested). With htmx, filters, sorting and paging fetch the results
fragment alone (crm.htmx); without it, the same URLs give the whole page. Open to every member, like the billables list.
"""
from django.utils.cache import patch_vary_headers

from crm.htmx import htmx_fragment
from crm.views import FilteredListView
from finance import selectors
from finance.filters import InvoiceFilter
from finance.modes import current_livemode

# (label, sort key, numeric column)
COLUMNS = [
    ("Number", "number", False), ("Stripe number", "stripe_number", False), ("Contact", "contact", False),
    ("Issued", "issued", False), ("Due", "due", False), ("Status", "status", False),
    ("Total", "total", True), ("Remaining", "remaining", True),
]


def sort_headers(current: str | None) -> list[dict]:
    """Header cells: clicking a column sorts by it ascending, clicking again descending."""
    headers = []
    for label, key, numeric in COLUMNS:
        active = current is not None and current.removeprefix("-") == key
        descending = active and current.startswith("-")
        headers.append({
            "label": label, "numeric": numeric, "active": active,
            "next": key if (not active or descending) else f"-{key}",
            "arrow": ("▼" if descending else "▲") if active else "",
            "aria_sort": ("descending" if descending else "ascending") if active else "none",
        })
    return headers


class InvoiceListView(FilteredListView):
    template_name = "ui/invoice_list.html"
    filterset_class = InvoiceFilter
    title = "Invoices"

    def sort(self):
        return selectors.invoice_sort_key(self.request.GET.get("sort"))

    def get_queryset(self):
        return selectors.invoice_list(business=self.business, filters=self.filter_data(), sort=self.sort(),
                                      livemode=current_livemode(self.request, self.business))

    def filter_data(self):
        data = super().filter_data()
        data.pop("sort", None)
        return data

    def paginate_queryset(self, queryset, page_size):
        # `page=abc` or a page past the end shows the first or last page instead of a 404:
        # a stale bookmark after filters changed is no error.
        paginator = self.get_paginator(queryset, page_size, allow_empty_first_page=True)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def get_template_names(self):
        # A filter change, sort or page link made by htmx swaps the results alone.
        return ["ui/_invoice_results.html" if htmx_fragment(self.request) else self.template_name]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["headers"] = sort_headers(self.sort())
        context["today"] = selectors.today()
        context["fragment"] = htmx_fragment(self.request)
        return context

    def render_to_response(self, context, **response_kwargs):
        response = super().render_to_response(context, **response_kwargs)
        patch_vary_headers(response, ["HX-Request"])
        return response
