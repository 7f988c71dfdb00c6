"""Finance pages of the staff UI. The billables list is read-only and open to every
member (staff see what is billed to their contacts); changing billables is for the
finance and owner roles, in the admin."""
from crm.views import FilteredListView
from finance import selectors
from finance.filters import BillableFilter


class BillableListView(FilteredListView):
    template_name = "ui/billable_list.html"
    filterset_class = BillableFilter
    selector = staticmethod(selectors.billable_list)
    title = "Billables"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["unbilled"] = selectors.unbilled_totals(business=self.business)
        return context
