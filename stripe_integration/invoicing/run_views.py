"""The "Invoice everything unbilled" pages of the staff UI (issue 14), finance and owner
roles: /invoices/unbilled/ previews what a run would make (per bill-to and currency,
totals, what is left out and why) and starts it; /invoices/runs/<id>/ shows its progress
until the run ends: htmx polls the progress fragment every second (the same URL answers an
htmx request with the fragment alone), and without JavaScript a meta refresh reloads the
page. Under eager Celery
(`make run` without a broker) the pushes run inside the POST, so the progress page opens
on a finished run and says so.
"""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views import View

from crm.audit import client_ip
from crm.htmx import htmx_fragment
from crm.tenancy import MemberRequiredMixin
from finance.invoices import NothingToInvoice
from finance.modes import current_livemode

from ..connect.oauth import connection_get_active
from ..models import InvoiceRun
from .push import InvoicingError
from .unbilled_run import invoice_run_active, invoice_run_invoices, invoice_run_start, unbilled_preview

REFRESH_SECONDS = 2


class UnbilledRunView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request):
        preview = unbilled_preview(business=self.business)
        return render(request, "ui/invoices/unbilled.html", {
            "title": "Invoice everything unbilled", "preview": preview, "draft": preview.draft,
            "connected": connection_get_active(business=self.business) is not None,
            "running": invoice_run_active(business=self.business),
            "runs": InvoiceRun.objects.filter(business=self.business).select_related("started_by")[:10],
        })

    def post(self, request):
        try:
            run = invoice_run_start(business=self.business, user=request.user, ip=client_ip(request),
                                    fingerprint=request.POST.get("fingerprint", ""),
                                    livemode=current_livemode(request, self.business))
        except NothingToInvoice as exc:
            messages.info(request, f"{exc} No invoice was made.")
            return redirect("ui:invoice_unbilled")
        except InvoicingError as exc:
            messages.error(request, exc.message)
            return redirect("ui:invoice_unbilled")
        return redirect("ui:invoice_run", pk=run.pk)


class InvoiceRunView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request, pk):
        run = InvoiceRun.objects.filter(business=self.business, pk=pk).select_related("started_by").first()
        if run is None:
            raise Http404("No such invoice run in this business.")
        context = {
            "title": f"Invoice run {run.pk}", "run": run, "refresh": REFRESH_SECONDS if run.status == "running" else None,
            "invoices": list(invoice_run_invoices(run=run)),
        }
        template = "ui/invoices/_run_progress.html" if htmx_fragment(request) else "ui/invoices/run.html"
        response = render(request, template, context)
        patch_vary_headers(response, ["HX-Request"])
        return response
