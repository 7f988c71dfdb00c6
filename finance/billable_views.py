"""Staff record billables (issue 14): add, edit and remove unbilled billables from an
opportunity, a ticket or the billables list. Every member may (the product's guide starts
invoicing with staff adding billables); invoiced billables are read-only. Forms in
finance.billable_forms, writes in finance.billables; the opportunity and ticket pages get
the add form through their page context (finance.pages).
"""
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.views import View

from crm import selectors as crm_selectors
from crm.models import Opportunity, Ticket
from crm.tenancy import MemberRequiredMixin
from crm.views import ServiceFormView
from finance import billables, selectors
from finance.billable_forms import BillableForm
from finance.money import quantize
from finance.models import Billable, BillableStatus


def source_url(*, opportunity_id=None, ticket_id=None) -> str:
    if opportunity_id:
        return reverse("ui:opportunity_detail", args=[opportunity_id])
    if ticket_id:
        return reverse("ui:ticket_detail", args=[ticket_id])
    return reverse("ui:billable_list")


def create_url(*, opportunity=None, ticket=None) -> str:
    url = reverse("ui:billable_create")
    if opportunity is not None:
        return f"{url}?opportunity={opportunity.pk}"
    if ticket is not None:
        return f"{url}?ticket={ticket.pk}"
    return url


def billable_form_for(*, business, opportunity=None, ticket=None) -> BillableForm:
    """The empty add form, its contact set to the opportunity's or ticket's."""
    source = opportunity or ticket
    initial = {"bill_to": source.contact_id} if source is not None else {}
    return BillableForm(business=business, instance=Billable(business=business), initial=initial)


class _ListPriceMixin:
    """"Use list price": re-show the form with the service's list price in the chosen
    currency filled in, saving nothing (the no-JavaScript prefill)."""

    def post(self, request, *args, **kwargs):
        if "prefill" not in request.POST:
            return super().post(request, *args, **kwargs)
        self.setup_instance()
        form = self.get_form()
        price = form.list_price()
        data = request.POST.copy()
        if price is None:
            messages.warning(request, "That service has no list price in this currency: enter a price.")
        else:
            data["unit_price"] = str(quantize(price, form.list_price_currency()))
        form = self.get_form_class()(data=data, business=self.business, instance=self.instance)
        form.errors.clear()  # shown again on Save, not on a prefill
        return self.render_to_response(self.get_context_data(form=form))


class BillableCreateView(_ListPriceMixin, ServiceFormView):
    """/billables/new/[?opportunity=<id> | ?ticket=<id>]."""

    form_class = BillableForm
    template_name = "ui/billable_form.html"

    def _source(self):
        params = self.request.GET
        self.opportunity = self.ticket = None
        try:
            if params.get("opportunity"):
                self.opportunity = crm_selectors.opportunity_get(business=self.business, pk=int(params["opportunity"]))
            elif params.get("ticket"):
                self.ticket = crm_selectors.ticket_get(business=self.business, pk=int(params["ticket"]))
        except (ValueError, Opportunity.DoesNotExist, Ticket.DoesNotExist):
            raise Http404("No such opportunity or ticket in this business.")

    def setup_instance(self):
        self._source()
        super().setup_instance()

    def get_instance(self):
        return Billable(business=self.business, opportunity=self.opportunity, ticket=self.ticket)

    def get_initial(self):
        initial = super().get_initial()
        source = self.opportunity or self.ticket
        if source is not None:
            initial["bill_to"] = source.contact_id
        return initial

    def get_title(self):
        source = self.opportunity or self.ticket
        return f"Add a billable to {source}" if source is not None else "Add a billable"

    def get_cancel_url(self):
        return source_url(opportunity_id=getattr(self.opportunity, "pk", None), ticket_id=getattr(self.ticket, "pk", None))

    get_success_url = get_cancel_url

    def save(self, form):
        return billables.billable_create(business=self.business, opportunity=self.opportunity, ticket=self.ticket,
                                         **form.service_data())

    def success_message(self):
        return f"Added “{self.saved}”."


class BillableUpdateView(_ListPriceMixin, ServiceFormView):
    """/billables/<pk>/edit/: unbilled only; an invoiced billable sends you back with why."""

    form_class = BillableForm
    template_name = "ui/billable_form.html"

    def get_instance(self):
        return self.fetch(selectors.billable_get, Billable)

    def get(self, request, *args, **kwargs):
        billable = self.fetch(selectors.billable_get, Billable)
        if billable.status != BillableStatus.UNBILLED:
            return self._refuse(billable)
        return super().get(request, *args, **kwargs)

    def _refuse(self, billable):
        where = f" on invoice {billable.invoice.number}" if billable.invoice_id else ""
        messages.error(self.request, f"“{billable}” is {billable.get_status_display().lower()}{where}: "
                                     "invoiced billables are read-only.")
        return HttpResponseRedirect(source_url(opportunity_id=billable.opportunity_id, ticket_id=billable.ticket_id))

    def get_title(self):
        return f"Edit “{self.instance}”"

    def get_cancel_url(self):
        return source_url(opportunity_id=self.instance.opportunity_id, ticket_id=self.instance.ticket_id)

    get_success_url = get_cancel_url

    def save(self, form):
        current = self.fetch(selectors.billable_get, Billable)
        return billables.billable_update(billable=current, data=form.service_data())

    def success_message(self):
        return f"Saved “{self.saved}”."

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["delete_url"] = reverse("ui:billable_delete", args=[self.kwargs["pk"]])
        return context


class BillableDeleteView(MemberRequiredMixin, View):
    """POST /billables/<pk>/delete/."""

    http_method_names = ["post"]

    def post(self, request, pk):
        try:
            billable = selectors.billable_get(business=self.business, pk=pk)
        except Billable.DoesNotExist:
            raise Http404("No such billable in this business.")
        back = source_url(opportunity_id=billable.opportunity_id, ticket_id=billable.ticket_id)
        try:
            billables.billable_delete(billable=billable)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Removed “{billable}”.")
        return HttpResponseRedirect(back)
