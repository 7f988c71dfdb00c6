"""The staff UI's "Refund / credit note" (URL name `ui:invoice_credit_note`): the form on
finance's invoice page posts here; a valid form gets a confirmation page saying what will
happen (with Stripe's preview), whose Confirm makes the credit note exactly once (its
one-time `request_key`: a double click finds the first one). Finance and owner roles.

The same URL voids an issued credit note (`void=<id>`): a page says what voiding does
(Stripe decides whether it still may), and only its explicit `confirmed=yes` POST voids."""
from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from crm.audit import client_ip
from crm.tenancy import MemberRequiredMixin
from finance.models import CreditNote, CreditNotePushStatus, CreditNoteStatus, Invoice
from finance.money import format_money, from_minor
from finance.pages import InvoiceDetailView

from ..gateway.client import GatewayError
from .forms import CreditNoteForm
from .issue import (MODE_LABELS, CreditNoteError, credit_note_create, credit_note_preview, credit_note_push,
                    credit_note_void, describe)


def preview_facts(*, invoice: Invoice, form: CreditNoteForm) -> tuple[list[tuple[str, str]], str]:
    """Stripe's preview as (label, amount) rows, or an explanation when Stripe gave none."""
    try:
        info = credit_note_preview(invoice=invoice, **form.service_kwargs())
    except (CreditNoteError, GatewayError) as exc:
        return [], f"Stripe could not preview it ({getattr(exc, 'message', None) or exc.user_message})."
    cur = invoice.currency
    # A preview makes no refund, so its post-payment part is named by the chosen mode.
    after = {"refund": "Refunded to the card", "credit": "Customer credit", "out_of_band": "Settled outside Stripe"}
    rows = [("Credit note total", info.amount), ("Lowers the amount owed", info.pre_payment_amount),
            (after.get(form.cleaned_data["mode"], "After payment"), info.post_payment_amount)]
    return [(label, format_money(from_minor(v, cur), cur)) for label, v in rows if v], ""


def credit_note_already_made(*, invoice: Invoice, data) -> CreditNote | None:
    """The credit note a confirmation page's one-time key already made (a double click, a
    resubmitted page), found before the form is checked again: the first click may have
    used up what could be credited."""
    key = (data.get("cn-request_key") or "")[:64]
    if data.get("confirm") != "yes" or not key:
        return None
    return CreditNote.objects.filter(business=invoice.business, invoice=invoice, request_key=key).first()


def credit_note_result_message(note) -> tuple[str, str]:
    if note.push_status == CreditNotePushStatus.PUSHED:
        refund = " Stripe is refunding the card; the refund's status shows below." if note.refund_amount else ""
        return messages.SUCCESS, f"Credit note {note.number or note.stripe_id} made in Stripe.{refund}"
    if note.push_status == CreditNotePushStatus.FAILED:
        return messages.ERROR, f"The credit note was not made: {note.last_error} Use Retry on the credit note."
    return messages.INFO, "The credit note is being made in Stripe."


def _posted_note(invoice: Invoice, data, field: str) -> CreditNote:
    """The invoice's credit note whose id the form posted in `field`, or a 404 (an id that
    is not a number, or too long for one, names none)."""
    raw = data.get(field) or ""
    note = invoice.credit_notes.filter(pk=int(raw) if raw.isdigit() and len(raw) < 12 else 0).first()
    if note is None:
        raise Http404("No such credit note on this invoice.")
    return note


class InvoiceCreditNoteView(MemberRequiredMixin, View):
    finance_required = True
    http_method_names = ["post"]

    def post(self, request, pk):
        invoice = Invoice.objects.for_business(self.business).select_related("business").filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice in this business.")
        if request.POST.get("retry"):
            note = _posted_note(invoice, request.POST, "retry")
            level, text = credit_note_result_message(credit_note_push(credit_note_id=note.pk))
            messages.add_message(request, level, text)
            return redirect("ui:invoice_detail", pk=pk)
        if "void" in request.POST:
            return self.void(request, invoice)
        made = credit_note_already_made(invoice=invoice, data=request.POST)
        if made is not None:  # a second click on Confirm: what the first one made, not a form error
            messages.add_message(request, *credit_note_result_message(made))
            return redirect("ui:invoice_detail", pk=pk)
        form = CreditNoteForm(request.POST, invoice=invoice)
        if not form.is_valid():
            return InvoiceDetailView.get(self, request, pk, extra_context={"credit_note_form": form}, status=400)
        if request.POST.get("confirm") != "yes" or not form.cleaned_data.get("request_key"):
            facts, preview_error = preview_facts(invoice=invoice, form=form)
            return render(request, "ui/invoices/credit_note_confirm.html", {
                "title": f"Credit note on {invoice.number}", "invoice": invoice, "form": form,
                "request_key": uuid.uuid4().hex, "mode_label": MODE_LABELS[form.cleaned_data["mode"]],
                "summary": describe(invoice=invoice, amount=form.cleaned_data["amount"], mode=form.cleaned_data["mode"]),
                "preview": facts, "preview_error": preview_error,
            })
        try:
            note = credit_note_create(invoice=invoice, user=request.user, request_key=form.cleaned_data["request_key"],
                                      ip=client_ip(request), **form.service_kwargs())
        except CreditNoteError as exc:  # the invoice changed since the confirmation page
            messages.error(request, exc.message)
        else:
            level, text = credit_note_result_message(note)
            messages.add_message(request, level, text)
        return redirect("ui:invoice_detail", pk=pk)


    def void(self, request, invoice):
        note = _posted_note(invoice, request.POST, "void")
        if note.status != CreditNoteStatus.ISSUED or not note.stripe_id:
            messages.error(request, f"Credit note {note.number or note.pk} is not an issued credit note in Stripe: "
                                    "there is nothing to void.")
            return redirect("ui:invoice_detail", pk=invoice.pk)
        if request.POST.get("confirmed") != "yes":
            return render(request, "ui/invoices/confirm.html", {
                "title": f"Void credit note {note.number or note.stripe_id}?", "invoice": invoice,
                "confirm_kind": "credit_note_void",
                "about": f"{invoice.number} · {invoice.bill_to.name} · credit note "
                         f"{format_money(note.amount, note.currency)}",
                "consequences": void_consequences(note),
                "post_url": reverse("ui:invoice_credit_note", args=[invoice.pk]),
                "hidden": [("void", note.pk), ("confirmed", "yes")], "yes_label": "Yes, void it"})
        try:
            voided = credit_note_void(credit_note=note, user=request.user, ip=client_ip(request))
        except CreditNoteError as exc:
            messages.error(request, f"Stripe did not void credit note {note.number or note.stripe_id}: {exc.message}")
        else:
            messages.success(request, f"Credit note {voided.number or voided.stripe_id} is void.")
        return redirect("ui:invoice_detail", pk=invoice.pk)


def void_consequences(note: CreditNote) -> list[str]:
    """What voiding `note` does, in plain sentences for the confirmation page."""
    cur = note.currency
    lines = [f"Stripe voids credit note {note.number or note.stripe_id} ({format_money(note.amount, cur)}). "
             "A void is final: to credit again, make a new credit note."]
    if note.pre_payment_amount:
        lines.append(f"The invoice's amount owed goes back up by {format_money(note.pre_payment_amount, cur)}.")
    if note.credit_amount:
        lines.append(f"The customer credit of {format_money(note.credit_amount, cur)} it gave is taken back "
                     "from the customer's balance in Stripe.")
    if note.refund_amount:
        lines.append(f"The refund of {format_money(note.refund_amount, cur)} is not reversed: money already "
                     "refunded stays with the customer.")
    if note.out_of_band_amount:
        lines.append(f"The {format_money(note.out_of_band_amount, cur)} settled outside Stripe is not undone there.")
    lines.append("Stripe may refuse (for example once the invoice is paid or void); its reason is then shown.")
    return lines


def credit_note_form_context(*, invoice, membership) -> dict:
    """The form on finance's invoice page, for finance and owner roles, when Stripe allows
    a credit note on the invoice now."""
    from .issue import credit_note_modes

    if not membership.can_manage_finance:
        return {}
    context = {"credit_notes_failed": list(invoice.credit_notes.filter(push_status=CreditNotePushStatus.FAILED)),
               "credit_notes_voidable": list(invoice.credit_notes.filter(status=CreditNoteStatus.ISSUED,
                                                                           stripe_id__gt="").order_by("pk"))}
    if any(v > 0 for v in credit_note_modes(invoice).values()):
        context["credit_note_form"] = CreditNoteForm(invoice=invoice)
    return context
