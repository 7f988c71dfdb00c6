"""The staff UI: server-rendered pages for members of a business.

Every view is a `MemberRequiredMixin` view (anonymous -> login, no membership -> 403);
reads go through the selectors with the membership's business, writes through
crm.services, and the business never comes from the request data.
"""
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from crm import selectors, services
from crm.choice_fields import is_possible_key
from crm.custom_fields import custom_values_display
from crm.filters import ContactFilter, OpportunityFilter, TicketFilter
from crm.forms import IndividualForm, OpportunityForm, OrganizationForm, TicketForm
from crm.models import Business, Contact, ContactKind, CustomFieldTarget, Individual, Opportunity, Organization, Ticket
from crm.page_context import page_context
from crm.tenancy import SESSION_KEY, MemberRequiredMixin

PAGE_SIZE = 25
PREVIEW_SIZE = 20  # rows per section on a detail page before "show all"


def preview(queryset, size=PREVIEW_SIZE):
    """The first `size` rows and whether there are more, in one query."""
    rows = list(queryset[: size + 1])
    return rows[:size], len(rows) > size


def apply_validation_error(form, error: ValidationError):
    """Show a service's ValidationError on the form: on its field when the form has one."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


# --- generic building blocks ------------------------------------------------------------

class FilteredListView(MemberRequiredMixin, ListView):
    """A paginated list from `selector(business=..., filters=request.GET)`, with the
    FilterSet's form for the filter bar."""

    filterset_class = None
    selector = None
    paginate_by = PAGE_SIZE
    title = ""

    def get_queryset(self):
        return type(self).selector(business=self.business, filters=self.filter_data())

    def filter_data(self):
        data = self.request.GET.copy()
        data.pop("page", None)
        return data

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        data = self.filter_data()
        filterset = self.filterset_class(data or None, business=self.business)
        context.update(filterset=filterset, filters_active=bool(data), title=self.title)
        return context


class SelectorDetailView(MemberRequiredMixin, TemplateView):
    """One row through `getter(business=..., pk=...)`; missing or another business's: 404."""

    getter = None
    context_object_name = "object"

    def get_object(self):
        try:
            return type(self).getter(business=self.business, pk=self.kwargs["pk"])
        except ObjectDoesNotExist:
            raise Http404("No such record in this business.")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        self.object = self.get_object()
        context[self.context_object_name] = self.object
        context.update(self.get_extra_context(self.object))
        return context

    def get_extra_context(self, obj):
        return {}


class ServiceFormView(MemberRequiredMixin, FormView):
    """A create/edit form whose `save(form)` calls a service and returns the saved row;
    a ValidationError from the service is shown on the form."""

    template_name = "ui/form.html"
    title = ""

    def get_instance(self):
        return None

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["business"] = self.business
        kwargs["instance"] = self.instance
        return kwargs

    def get_title(self):
        return self.title

    def get_cancel_url(self):
        return reverse("ui:home")

    def setup_instance(self):
        self.instance = self.get_instance()
        # Taken now: a bound ModelForm writes the submitted values onto the instance.
        self.heading = self.get_title()

    def get(self, request, *args, **kwargs):
        self.setup_instance()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.setup_instance()
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        try:
            self.saved = self.save(form)
        except ValidationError as error:
            apply_validation_error(form, error)
            return self.form_invalid(form)
        messages.success(self.request, self.success_message())
        return HttpResponseRedirect(self.get_success_url())

    def save(self, form):
        raise NotImplementedError

    def success_message(self):
        return f"Saved {self.saved}."

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(title=self.heading, cancel_url=self.get_cancel_url(), instance=self.instance)
        return context

    def fetch(self, getter, model):
        try:
            return getter(business=self.business, pk=self.kwargs["pk"])
        except model.DoesNotExist:
            raise Http404("No such record in this business.")


# --- home -------------------------------------------------------------------------------

class HomeView(MemberRequiredMixin, TemplateView):
    template_name = "ui/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        business = self.business
        open_tickets = selectors.ticket_list(business=business, filters={"status": ["open", "pending"]})
        context.update(
            counts=selectors.crm_counts(business=business),
            open_tickets=list(open_tickets[:5]),
            memberships=list(selectors.membership_list(user=self.request.user)),
            **page_context("home", business=business, request=self.request),  # invoice counts, unbilled totals (finance)
        )
        return context


class SwitchBusinessView(MemberRequiredMixin, View):
    """Choose which of the user's businesses to work in (stored in the session)."""

    http_method_names = ["post"]

    def post(self, request):
        business_id = request.POST.get("business")
        if not is_possible_key(Business._meta.pk, business_id):
            raise Http404("No such business.")
        membership = get_object_or_404(selectors.membership_list(user=request.user), business_id=business_id)
        request.session[SESSION_KEY] = membership.business_id
        messages.info(request, f"Now working in {membership.business}.")
        return redirect("ui:home")


# --- contacts ---------------------------------------------------------------------------

class ContactListView(FilteredListView):
    template_name = "ui/contact_list.html"
    filterset_class = ContactFilter
    selector = staticmethod(selectors.contact_list)
    title = "Contacts"


class ContactDetailView(SelectorDetailView):
    template_name = "ui/contact_detail.html"
    getter = staticmethod(selectors.contact_get)
    context_object_name = "contact"

    def get_extra_context(self, contact):
        business = self.business
        opportunities, more_opportunities = preview(selectors.opportunity_list(business=business, contact=contact))
        tickets, more_tickets = preview(selectors.ticket_list(business=business, contact=contact))
        people, more_people = [], False
        if contact.kind == ContactKind.ORGANIZATION:
            people, more_people = preview(selectors.organization_people(business=business, organization=contact.pk))
        return {
            "specific": contact.specific,
            "custom_values": custom_values_display(business=business, applies_to=CustomFieldTarget.CONTACT,
                                                   values=contact.custom_fields),
            "people": people, "more_people": more_people,
            "opportunities": opportunities, "more_opportunities": more_opportunities,
            "tickets": tickets, "more_tickets": more_tickets,
            # billables, invoices, payments and unbilled totals (finance)
            **page_context("contact_detail", business=business, contact=contact, request=self.request),
        }


class ContactCreateView(ServiceFormView):
    """/contacts/new/individual/ and /contacts/new/organization/."""

    def get_form_class(self):
        return OrganizationForm if self.kwargs["kind"] == ContactKind.ORGANIZATION else IndividualForm

    def get_instance(self):
        model = Organization if self.kwargs["kind"] == ContactKind.ORGANIZATION else Individual
        return model(business=self.business)

    def get_initial(self):
        initial = super().get_initial()
        initial["country"] = self.business.country
        if self.kwargs["kind"] == ContactKind.INDIVIDUAL and self.request.GET.get("organization"):
            initial["organization"] = self.request.GET["organization"]
        return initial

    def get_title(self):
        return f"New {ContactKind(self.kwargs['kind']).label.lower()}"

    def get_cancel_url(self):
        return reverse("ui:contact_list")

    def save(self, form):
        return services.contact_create(business=self.business, kind=self.kwargs["kind"], **form.service_data())

    def get_success_url(self):
        return reverse("ui:contact_detail", args=[self.saved.pk])


class ContactUpdateView(ServiceFormView):
    def get_instance(self):
        contact = self.fetch(selectors.contact_get, Contact)
        return contact.specific

    def get_form_class(self):
        return OrganizationForm if isinstance(self.instance, Organization) else IndividualForm

    def get_title(self):
        return f"Edit {self.instance.name}"

    def get_cancel_url(self):
        return reverse("ui:contact_detail", args=[self.kwargs["pk"]])

    def save(self, form):
        # A fresh copy: the ModelForm has already written the input onto self.instance.
        current = self.fetch(selectors.contact_get, Contact).specific
        return services.contact_update(contact=current, data=form.service_data())

    def get_success_url(self):
        return reverse("ui:contact_detail", args=[self.saved.pk])


# --- opportunities ----------------------------------------------------------------------

class OpportunityListView(FilteredListView):
    template_name = "ui/opportunity_list.html"
    filterset_class = OpportunityFilter
    selector = staticmethod(selectors.opportunity_list)
    title = "Opportunities"


class OpportunityDetailView(SelectorDetailView):
    template_name = "ui/opportunity_detail.html"
    getter = staticmethod(selectors.opportunity_get)
    context_object_name = "opportunity"

    def get_extra_context(self, opportunity):
        return page_context("opportunity_detail", business=self.business, opportunity=opportunity)  # billables


class OpportunityCreateView(ServiceFormView):
    form_class = OpportunityForm
    title = "New opportunity"

    def get_instance(self):
        return Opportunity(business=self.business)

    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("contact"):
            initial["contact"] = self.request.GET["contact"]
        initial["owner"] = self.request.user.pk
        return initial

    def get_cancel_url(self):
        return reverse("ui:opportunity_list")

    def save(self, form):
        return services.opportunity_create(business=self.business, **form.service_data())

    def get_success_url(self):
        return reverse("ui:opportunity_detail", args=[self.saved.pk])


class OpportunityUpdateView(ServiceFormView):
    form_class = OpportunityForm

    def get_instance(self):
        return self.fetch(selectors.opportunity_get, Opportunity)

    def get_title(self):
        return f"Edit {self.instance.title}"

    def get_cancel_url(self):
        return reverse("ui:opportunity_detail", args=[self.kwargs["pk"]])

    def save(self, form):
        current = self.fetch(selectors.opportunity_get, Opportunity)
        return services.opportunity_update(opportunity=current, data=form.service_data())

    def get_success_url(self):
        return reverse("ui:opportunity_detail", args=[self.saved.pk])


# --- tickets ----------------------------------------------------------------------------

class TicketListView(FilteredListView):
    template_name = "ui/ticket_list.html"
    filterset_class = TicketFilter
    selector = staticmethod(selectors.ticket_list)
    title = "Tickets"


class TicketDetailView(SelectorDetailView):
    template_name = "ui/ticket_detail.html"
    getter = staticmethod(selectors.ticket_get)
    context_object_name = "ticket"

    def get_extra_context(self, ticket):
        return page_context("ticket_detail", business=self.business, ticket=ticket)  # billables


class TicketCreateView(ServiceFormView):
    form_class = TicketForm
    title = "New ticket"

    def get_instance(self):
        return Ticket(business=self.business)

    def get_initial(self):
        initial = super().get_initial()
        if self.request.GET.get("contact"):
            initial["contact"] = self.request.GET["contact"]
        return initial

    def get_cancel_url(self):
        return reverse("ui:ticket_list")

    def save(self, form):
        return services.ticket_create(business=self.business, **form.service_data())

    def get_success_url(self):
        return reverse("ui:ticket_detail", args=[self.saved.pk])


class TicketUpdateView(ServiceFormView):
    form_class = TicketForm

    def get_instance(self):
        return self.fetch(selectors.ticket_get, Ticket)

    def get_title(self):
        return f"Edit {self.instance.subject}"

    def get_cancel_url(self):
        return reverse("ui:ticket_detail", args=[self.kwargs["pk"]])

    def save(self, form):
        current = self.fetch(selectors.ticket_get, Ticket)
        return services.ticket_update(ticket=current, data=form.service_data())

    def get_success_url(self):
        return reverse("ui:ticket_detail", args=[self.saved.pk])
