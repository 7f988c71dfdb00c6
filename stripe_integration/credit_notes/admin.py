"""The admin's "Refund / credit note" on an invoice (issue 13), mixed into finance's
InvoiceAdmin by `stripe_integration.admin.extensions`: a button on the invoice page leads
to an intermediate page (the staff UI's form: amount, how, reason, memo), then a
confirmation saying what will happen, whose Confirm calls `issue.credit_note_create` with
the page's one-time key (a double click makes one credit note). Refusals are form errors.
"""
import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from crm.audit import client_ip

from .forms import CreditNoteForm
from .issue import MODE_LABELS, CreditNoteError, credit_note_create, credit_note_modes, describe
from .views import credit_note_already_made, credit_note_result_message, preview_facts


class InvoiceCreditNoteMixin:
    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.append(("Credit notes", {"fields": ("credit_note_button",)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "credit_note_button")

    @admin.display(description="refund / credit note")
    def credit_note_button(self, obj):
        if obj is None or obj.pk is None or not any(v > 0 for v in credit_note_modes(obj).values()):
            return "Not possible now (an open or paid invoice in Stripe, with something left to credit)."
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_credit_note", args=[obj.pk])
        return format_html('<a class="button" href="{}" data-admin-credit-note>Refund / credit note…</a>', url)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("<int:pk>/credit-note/", self.admin_site.admin_view(self.credit_note_view),
                 name="%s_%s_credit_note" % info),
        ] + super().get_urls()

    def credit_note_view(self, request, pk):
        invoice = self.get_queryset(request).filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_change_permission(request, invoice):
            raise PermissionDenied
        opts = self.model._meta
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
        made = credit_note_already_made(invoice=invoice, data=request.POST) if request.method == "POST" else None
        if made is not None:  # a second click on Confirm
            level, text = credit_note_result_message(made)
            self.message_user(request, text, level)
            return HttpResponseRedirect(change_url)
        form = CreditNoteForm(request.POST if request.method == "POST" else None, invoice=invoice)
        context = {**self.admin_site.each_context(request), "opts": opts, "invoice": invoice, "form": form,
                   "title": f"Refund / credit note on {invoice.number}", "change_url": change_url}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            if request.POST.get("confirm") == "yes" and data.get("request_key"):
                try:
                    note = credit_note_create(invoice=invoice, user=request.user, request_key=data["request_key"],
                                              ip=client_ip(request), **form.service_kwargs())
                except CreditNoteError as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    level, text = credit_note_result_message(note)
                    self.message_user(request, text, level)
                return HttpResponseRedirect(change_url)
            facts, preview_error = preview_facts(invoice=invoice, form=form)
            context.update(confirming=True, request_key=uuid.uuid4().hex, mode_label=MODE_LABELS[data["mode"]],
                           summary=describe(invoice=invoice, amount=data["amount"], mode=data["mode"]),
                           preview=facts, preview_error=preview_error)
        return TemplateResponse(request, "admin/finance/invoice/credit_note.html", context,
                                status=400 if form.is_bound and form.errors else 200)
