"""The import's pages (finance and owner roles): start or resume it, its progress page
(refreshing itself with a meta refresh while it runs, no JavaScript) with the summary of
what was created, matched and skipped and why, and the business's import rules.
Under eager Celery (`make run` without a broker) the import runs inside the request that
starts it, so the progress page opens on a finished import."""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from crm.tenancy import MemberRequiredMixin

from ..connect.oauth import connection_get_active
from ..models import ImportedObject, ImportRules, ImportStatus, StripeImport
from .forms import ImportRulesForm
from .start import ImportError_, import_start

REFRESH_SECONDS = 2


class ImportStartView(MemberRequiredMixin, View):
    finance_required = True

    def post(self, request):
        connection = connection_get_active(business=self.business)
        if connection is None:
            messages.error(request, "Connect a Stripe account first.")
            return redirect("stripe_integration:settings")
        try:
            job = import_start(connection=connection, user=request.user)
        except ImportError_ as exc:
            messages.error(request, exc.message)
            return redirect("stripe_integration:settings")
        return redirect("stripe_integration:import_progress", pk=job.pk)


class ImportProgressView(MemberRequiredMixin, View):
    finance_required = True

    def get(self, request, pk):
        job = StripeImport.objects.filter(business=self.business, pk=pk).select_related("connection", "started_by").first()
        if job is None:
            raise Http404("No such import in this business.")
        active = job.status in (ImportStatus.WAITING, ImportStatus.RUNNING)
        skipped = (ImportedObject.objects.filter(business=self.business, connection=job.connection, outcome="skipped")
                   .order_by("kind", "stripe_id")[:200])
        return render(request, "stripe_integration/import_progress.html", {
            "title": f"Stripe import {job.pk}", "job": job, "refresh": REFRESH_SECONDS if active else None,
            "rows": job.count_rows(), "skipped": skipped, "replay": job.counts.get("replay") or {},
        })


class ImportRulesView(MemberRequiredMixin, View):
    finance_required = True

    def post(self, request):
        form = ImportRulesForm(request.POST, instance=ImportRules.for_business(self.business))
        if form.is_valid():
            form.save()
            messages.success(request, "Import rules saved.")
        else:
            errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
            messages.error(request, f"Import rules not saved: {errors}")
        return redirect("stripe_integration:settings")
