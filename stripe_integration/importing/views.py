"""The import's pages (finance and owner roles): start or resume it, its progress page
(refreshing itself with a meta refresh while it waits or runs, no JavaScript) with the
objects handled so far, in the current phase and in all, the summary of what was created,
matched and skipped and why, and the business's import rules. The import runs in a
worker or the periodic sweep (`start.py`), never in these requests."""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views import View

from crm.tenancy import MemberRequiredMixin

from ..connect.oauth import connection_get_active
from ..runs.disable import integration_require_enabled
from ..models import IMPORT_PHASES, ImportedObject, ImportRules, ImportStatus, StripeImport
from .forms import ImportRulesForm
from .start import ImportError_, import_start

REFRESH_SECONDS = 2


class ImportStartView(MemberRequiredMixin, View):
    finance_required = True

    def post(self, request):
        integration_require_enabled(business=self.business)  # it would only wait for re-enable
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


def handled(counts: dict, kind: str) -> int:
    """Objects of one phase the import handled so far (created, matched or skipped)."""
    figures = counts.get(kind) or {}
    return sum(figures.get(what, 0) for what in ("created", "matched", "skipped"))


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
            # Stripe's lists give no totals: what was handled shows a long phase moving.
            "phase_handled": handled(job.counts, job.phase),
            "total_handled": sum(handled(job.counts, kind) for kind in IMPORT_PHASES[:-1]),
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
