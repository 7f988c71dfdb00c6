"""The "Refund / credit note" form, for the staff UI's invoice page and the admin. Its
rules are the service's (`issue.credit_note_validate`): the form only turns a refusal
into a field error, so the page shows it again, never a 500."""
from __future__ import annotations

from django import forms

from finance.models import CreditNoteReason, Invoice

from .issue import MODE_LABELS, CreditNoteError, credit_note_modes, credit_note_validate


class CreditNoteForm(forms.Form):
    prefix = "cn"

    amount = forms.CharField(label="Amount", max_length=32)
    mode = forms.ChoiceField(label="How", choices=[])
    reason = forms.ChoiceField(label="Reason", required=False, choices=[("", "---------"), *CreditNoteReason.choices])
    memo = forms.CharField(label="Memo", required=False, max_length=500,
                           help_text="Shown on the credit note the customer receives.")
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        modes = credit_note_modes(invoice)
        self.fields["mode"].choices = [(m, MODE_LABELS[m]) for m in modes]
        if len(modes) == 1:
            self.fields["mode"].initial = next(iter(modes))
        self.fields["amount"].help_text = f"In {invoice.currency}."

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["amount"] = credit_note_validate(invoice=self.invoice, amount=data["amount"], reason=data["reason"],
                                                  memo=data.get("memo", ""), mode=data["mode"])
        except CreditNoteError as exc:
            self.add_error(exc.field or None, exc.message)
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {"amount": data["amount"], "mode": data["mode"], "reason": data["reason"], "memo": data["memo"]}
