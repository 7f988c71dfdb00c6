"""Runs and events pages of the staff UI (finance and owner roles), the "Mark actioned"
button and the one-click re-enable. Reads through `selectors`; another business's run or
event is a 404."""
from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from crm.audit import client_ip
from crm.tenancy import MemberRequiredMixin
from crm.views import FilteredListView, SelectorDetailView
from finance.modes import current_livemode, in_mode

from . import selectors
from .disable import integration_disable, integration_reenable
from .filters import EventFilter, RunFilter
from .services import event_mark_actioned

PAGE_SIZE = 50


class _Paged:
    paginate_by = PAGE_SIZE
    finance_required = True

    def paginate_queryset(self, queryset, page_size):
        paginator = self.get_paginator(queryset, page_size, allow_empty_first_page=True)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()

    def get_queryset(self):
        # The session's Stripe mode only (finance.modes): test runs never in live views.
        return in_mode(super().get_queryset(), current_livemode(self.request, self.business), self.mode_path)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["integration_disabled"] = selectors.integration_state(business=self.business)
        return context


class RunListView(_Paged, FilteredListView):
    template_name = "stripe_integration/run_list.html"
    filterset_class = RunFilter
    selector = staticmethod(selectors.run_list)
    title = "Stripe runs"
    mode_path = "livemode"


class EventListView(_Paged, FilteredListView):
    template_name = "stripe_integration/event_list.html"
    filterset_class = EventFilter
    selector = staticmethod(selectors.event_list)
    title = "Stripe events"
    mode_path = "run__livemode"


class RunDetailView(SelectorDetailView):
    template_name = "stripe_integration/run_detail.html"
    getter = staticmethod(selectors.run_get)
    context_object_name = "run"
    finance_required = True

    def get_extra_context(self, run):
        kind, _, ref = run.subject.partition(":")
        invoice_id = int(ref) if kind == "invoice" and ref.isdigit() else None
        return {"events": selectors.run_events(run=run), "title": str(run), "invoice_id": invoice_id}


class EventActionedView(MemberRequiredMixin, View):
    finance_required = True

    def post(self, request, pk):
        try:
            event = selectors.event_get(business=self.business, pk=pk)
        except ObjectDoesNotExist:
            raise Http404("No such event in this business.")
        event_mark_actioned(event=event, user=request.user, ip=client_ip(request))
        messages.success(request, "Marked actioned.")
        back = request.POST.get("next", "")
        if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                    require_https=request.is_secure()):
            return redirect(back)
        return redirect("stripe_integration:event_list")


class ReenableView(MemberRequiredMixin, View):
    finance_required = True

    def post(self, request):
        queued = integration_reenable(business=self.business, user=request.user, ip=client_ip(request))
        if not queued:
            messages.info(request, "The Stripe integration is already enabled.")
        else:
            messages.success(request, (
                "Stripe integration re-enabled. Retrying what waited: "
                f"{queued['invoice_pushes']} invoice push(es), {queued['webhook_deliveries']} webhook delivery(ies), "
                f"{queued['customer_pushes']} customer update(s), "
                f"{queued['catch_up_events']} missed event(s) from the catch-up"
                + (", and a catalog sync." if queued["catalog_sync"] else ".")))
        return redirect("stripe_integration:run_list")


class PauseView(MemberRequiredMixin, View):
    """The business's own switch (Stripe page): stop every Stripe-facing job of this
    business now, as auto-disable does (runs record `disabled`, nothing calls Stripe;
    pushes, webhooks and syncs wait), until Re-enable retries what waited. The periodic
    tasks themselves serve every business and stay the operator's."""
    finance_required = True

    def post(self, request):
        from ..models import IntegrationSettings

        IntegrationSettings.for_business(self.business)  # the row the switch lives on
        reason = f"Paused by {request.user.get_username()} on the Stripe page."
        if integration_disable(business_id=self.business.pk, reason=reason, user=request.user):
            messages.success(request, "Stripe work is paused for this business: nothing is sent to Stripe and "
                                      "what comes in waits until you re-enable it.")
        else:
            messages.info(request, "The Stripe integration is already disabled.")
        return redirect("stripe_integration:settings")
