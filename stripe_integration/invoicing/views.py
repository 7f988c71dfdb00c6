"""The staff UI's Send-to-Stripe screens (URL names `ui:invoice_preview`, `ui:invoice_send`,
`ui:invoice_action`, in the `ui` namespace that config/urls.py assembles), and what the
integration adds to finance's read-only invoice page (`invoice_detail_context`)."""
# --- invoices from billables (issue 6) ----------------------------------------------------
# Select unbilled billables on a contact, opportunity or ticket page -> preview -> "Send to
# Stripe"; then finance's invoice page (finance/pages.py) with Stripe's number, status, due
# date, payment page and PDF, where `invoice_detail_context` adds the actions Stripe allows.
# Writes: finance/owner roles; the page: every member.
from django.contrib import messages  # noqa: E402
from django.http import Http404  # noqa: E402
from django.shortcuts import redirect, render  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme, urlencode  # noqa: E402
from django.views import View  # noqa: E402

from crm.audit import client_ip  # noqa: E402
from crm.tenancy import MemberRequiredMixin  # noqa: E402
from finance.invoices import NothingToInvoice, billables_for_invoicing, invoice_draft  # noqa: E402
from finance.modes import current_livemode  # noqa: E402
from finance.models import Invoice  # noqa: E402
from finance.money import format_money  # noqa: E402
from finance.validators import po_number_problem  # noqa: E402
from finance.pages import InvoiceDetailView  # noqa: E402

from ..models import IntegrationSettings  # noqa: E402
from .actions import ACTION_LABELS, invoice_action, invoice_actions  # noqa: E402
from .confirm import CONFIRM_ACTIONS, CONFIRM_FIELD, action_consequences, needs_confirmation  # noqa: E402
from .forms import OutOfBandPaymentForm  # noqa: E402
from .push import InvoicingError, build_options, invoices_generate  # noqa: E402
from ..rules.eligibility import contact_outside_rules  # noqa: E402


def _selected_ids(request) -> list[int]:
    ids = []
    for value in request.POST.getlist("billables"):
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if 0 < number < 2**63:  # no row has another id; SQLite can't even compare a larger one
            ids.append(number)
    return ids


def _back(request, fallback="ui:billable_list"):
    target = request.POST.get("next") or request.GET.get("next")
    # Only a path ("/contacts/3/"): anything else would be taken for a URL name by redirect().
    if target and target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(fallback)


class InvoicePreviewView(MemberRequiredMixin, View):
    """POST with the selected billables: what the invoices will be, per bill-to and currency."""

    finance_required = True
    http_method_names = ["post"]

    def post(self, request):
        ids = _selected_ids(request)
        if not ids:
            messages.warning(request, "Select at least one unbilled billable to invoice.")
            return redirect(_back(request))
        billables = list(billables_for_invoicing(business=self.business, ids=ids).select_related("invoice"))
        draft = invoice_draft(billables=billables, options=build_options(business=self.business))
        return render(request, "ui/invoices/preview.html", {
            "title": "Invoice preview", "draft": draft, "ids": [b.pk for b in billables], "next": _back(request),
            "only_approved": IntegrationSettings.for_business(self.business).only_approved,
        })


class InvoiceSendView(MemberRequiredMixin, View):
    """"Send to Stripe": make the invoices and queue their pushes."""

    finance_required = True
    http_method_names = ["post"]

    def post(self, request):
        ids = _selected_ids(request)
        po_number = request.POST.get("po_number", "").strip()
        if problem := po_number_problem(po_number):
            messages.error(request, f"{problem} Nothing was sent.")
            return redirect(_back(request))
        try:
            result = invoices_generate(business=self.business, billable_ids=ids, user=request.user, ip=client_ip(request),
                                       po_number=po_number,
                                       approved=request.POST.get("approved") == "on",
                                       livemode=current_livemode(request, self.business))
        except NothingToInvoice as exc:
            messages.error(request, f"{exc} Nothing was sent.")
            return redirect(_back(request))
        numbers = ", ".join(inv.number for inv in result.invoices)
        messages.success(request, f"Created {len(result.invoices)} invoice(s): {numbers}. They are being sent to Stripe.")
        if result.left_out:
            messages.warning(request, f"{len(result.left_out)} billable(s) left out: "
                             + "; ".join(sorted({reason for _, reason in result.left_out})))
        if len(result.invoices) == 1:
            return redirect("ui:invoice_detail", pk=result.invoices[0].pk)
        return redirect(_back(request))


class InvoiceActionView(MemberRequiredMixin, View):
    """POST runs an action. Void, mark uncollectible and delete draft first show a page
    that says what will happen (GET `?action=...`) and run only on its POST with
    `confirmed=yes`; a POST without it comes back to that page, nothing done."""

    finance_required = True
    http_method_names = ["get", "post"]

    def _invoice(self, pk):
        invoice = Invoice.objects.for_business(self.business).select_related("bill_to").filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice in this business.")
        return invoice

    def get(self, request, pk):
        invoice, action = self._invoice(pk), request.GET.get("action", "")
        if not needs_confirmation(action):
            raise Http404("No confirmation page for this action.")
        if action not in invoice_actions(invoice):
            messages.error(request, f"{ACTION_LABELS[action]} is not possible on {invoice.number} now "
                                    f"({invoice.get_status_display().lower()}).")
            return redirect("ui:invoice_detail", pk=pk)
        return render(request, "ui/invoices/confirm.html", {
            "title": f"{ACTION_LABELS[action]} {invoice.number}?", "invoice": invoice, "confirm_kind": action,
            "about": f"{invoice.bill_to.name} · {invoice.get_status_display()} · total "
                     f"{format_money(invoice.total, invoice.currency)}",
            "consequences": action_consequences(invoice, action),
            "post_url": reverse("ui:invoice_action", args=[pk]),
            "hidden": [("action", action), (CONFIRM_FIELD, "yes")],
            "yes_label": f"Yes, {ACTION_LABELS[action].lower()}",
        })

    def post(self, request, pk):
        invoice = self._invoice(pk)
        action, details = request.POST.get("action", ""), None
        if needs_confirmation(action) and request.POST.get(CONFIRM_FIELD) != "yes":
            return redirect(reverse("ui:invoice_action", args=[pk]) + "?" + urlencode({"action": action}))
        if action == "mark_paid_out_of_band":  # date, method and reference, or the page again with errors
            form = OutOfBandPaymentForm(request.POST)
            if not form.is_valid():
                return InvoiceDetailView.get(self, request, pk, extra_context={"out_of_band_form": form}, status=400)
            details = form.details()
        try:
            message = invoice_action(invoice=invoice, action=action, user=request.user, out_of_band=details,
                                     ip=client_ip(request), livemode=current_livemode(request, self.business))
        except InvoicingError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, message)
        if Invoice.objects.filter(pk=pk).exists():
            return redirect("ui:invoice_detail", pk=pk)
        return redirect("ui:contact_detail", pk=invoice.bill_to_id)


def invoice_detail_context(*, invoice, membership) -> dict:
    """The actions Stripe allows on `invoice`, as buttons on finance's invoice page
    (finance and owner roles); registered for the "invoice_detail" page in apps.ready()."""
    actions = invoice_actions(invoice) if membership.can_manage_finance else []
    # Not in Stripe yet and its contact outside the Stripe rules: the push will refuse it.
    outside = "" if invoice.stripe_invoice_id else contact_outside_rules(contact=invoice.bill_to)
    return {"actions": [(a, ACTION_LABELS[a]) for a in actions], "out_of_band_form": OutOfBandPaymentForm(),
            "confirm_actions": CONFIRM_ACTIONS, "stripe_outside_rules": outside}
