from django import forms

from ..models import ImportRules


class ImportRulesForm(forms.ModelForm):
    contact_metadata_keys = forms.CharField(
        label="Metadata keys with extra contact e-mails", required=False, max_length=200,
        help_text="Comma-separated customer metadata keys, e.g. cc, to.")

    class Meta:
        model = ImportRules
        fields = ["import_drafts", "import_void", "uncollectible_as", "contact_metadata_keys"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and not self.is_bound:
            self.initial["contact_metadata_keys"] = ", ".join(self.instance.contact_metadata_keys or [])

    def clean_contact_metadata_keys(self):
        keys = [k.strip() for k in (self.cleaned_data.get("contact_metadata_keys") or "").split(",") if k.strip()]
        for key in keys:
            if len(key) > 40 or not key.replace("_", "").replace("-", "").isalnum():
                raise forms.ValidationError(f"{key!r} is not a metadata key (letters, digits, - and _; 40 at most).")
        return keys[:10]
