"""The "Mark paid outside Stripe" form (date, method, reference), for the staff UI's
invoice page and the admin (its list action and the button on the invoice page). The
write is `invoicing.actions.invoice_action(..., out_of_band=form.details())`; a form that
does not validate is shown again with its errors, never a 500."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from finance.models import OutOfBandMethod

from .out_of_band import OutOfBandPayment

ACTION = "mark_paid_out_of_band"
LIST_ACTION = "stripe_" + ACTION  # the admin list action's name


class OutOfBandPaymentForm(forms.Form):
    prefix = "oob"

    paid_on = forms.DateField(label="Paid on", initial=timezone.localdate,
                              widget=forms.DateInput(attrs={"type": "date"}))
    method = forms.ChoiceField(label="Method", choices=[("", "---------"), *OutOfBandMethod.choices])
    reference = forms.CharField(label="Reference", max_length=200,
                                help_text="Bank reference, receipt or cheque number.")

    def clean_paid_on(self):
        paid_on = self.cleaned_data["paid_on"]
        if paid_on > timezone.localdate():
            raise forms.ValidationError("The payment date cannot be in the future.")
        return paid_on

    def clean_reference(self):
        reference = self.cleaned_data["reference"].strip()
        if not reference:
            raise forms.ValidationError("Give the payment's reference.")
        return reference

    def details(self) -> OutOfBandPayment:
        data = self.cleaned_data
        return OutOfBandPayment(paid_on=data["paid_on"], method=data["method"], reference=data["reference"])


def admin_mark_paid_out_of_band(modeladmin, request, queryset):
    """The admin's "Mark paid outside Stripe": one invoice at a time, through a page that
    asks for the date, method and reference, then runs the action."""
    from .push import InvoicingError
    from .actions import invoice_action

    invoices = list(queryset.select_related("business", "bill_to")[:2])
    if len(invoices) != 1:
        modeladmin.message_user(request, "Mark one invoice at a time as paid outside Stripe: each payment has its "
                                         "own date, method and reference.", messages.ERROR)
        return None
    invoice = invoices[0]
    form = OutOfBandPaymentForm(request.POST if "_oob_submit" in request.POST else None)
    if form.is_bound and form.is_valid():
        opts = invoice._meta
        try:
            modeladmin.message_user(request, invoice_action(invoice=invoice, action=ACTION, user=request.user,
                                                            out_of_band=form.details()))
        except InvoicingError as exc:
            modeladmin.message_user(request, f"{invoice.number}: {exc.message}", messages.ERROR)
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[invoice.pk]))
    context = {
        **modeladmin.admin_site.each_context(request), "title": f"Mark {invoice.number} paid outside Stripe",
        "opts": modeladmin.model._meta, "invoice": invoice, "form": form, "action_name": LIST_ACTION,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/finance/invoice/mark_paid_out_of_band.html", context,
                            status=400 if form.is_bound else 200)
