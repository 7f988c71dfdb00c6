"""The admin's form for custom fields: one input per definition of the row's business
(crm.custom_fields), instead of the raw JSON. Used by the contact admins here and by
finance's invoice and payment admins.

    class InvoiceAdmin(CustomFieldsAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
        custom_fields_target = CustomFieldTarget.INVOICE

A bad value is a form error (the same check as the services); keys no longer defined are
kept. Without a business (a superuser adding a row) there are no inputs yet: save the row,
then edit it.
"""
from django.core.exceptions import ValidationError

from crm.custom_fields import (
    FORM_PREFIX, custom_field_definitions, custom_form_fields, custom_values_clean, custom_values_from_form,
)
from crm.tenancy import get_membership


class CustomFieldsAdminMixin:
    custom_fields_target = None  # a CustomFieldTarget
    custom_fields_title = "Custom fields"

    def _custom_business_id(self, request, obj):
        if obj is not None:
            return obj.business_id
        membership = get_membership(request)
        return membership.business_id if membership else None

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or ())
        return exclude if "custom_fields" in exclude else [*exclude, "custom_fields"]

    def _custom_definitions(self, request, obj):
        business_id = self._custom_business_id(request, obj)
        if business_id is None:
            return []
        return custom_field_definitions(business=business_id, applies_to=self.custom_fields_target)

    def get_form(self, request, obj=None, change=False, **kwargs):
        definitions = self._custom_definitions(request, obj)
        if definitions:
            # Declared on the base form: the admin's modelform_factory accepts declared
            # fields named in the fieldsets, and refuses unknown ones.
            kwargs["form"] = _custom_form(kwargs.get("form", self.form), definitions, self.custom_fields_target)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        names = [FORM_PREFIX + d.key for d in self._custom_definitions(request, obj)]
        listed = {name for _, options in fieldsets for name in _flatten(options.get("fields", ()))}
        missing = [name for name in names if name not in listed]
        if missing and (len(fieldsets) > 1 or fieldsets[0][0] is not None):
            fieldsets.append((self.custom_fields_title, {"fields": missing}))
        return fieldsets


def _custom_form(base, definitions, target):
    class CustomFieldsForm(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            values = self.instance.custom_fields if isinstance(self.instance.custom_fields, dict) else {}
            for d in definitions:
                self.initial.setdefault(FORM_PREFIX + d.key, values.get(d.key))

        def clean(self):
            cleaned = super().clean()
            current = self.instance.custom_fields if isinstance(self.instance.custom_fields, dict) else {}
            defined = {d.key for d in definitions}
            values = {**{k: v for k, v in current.items() if k not in defined},
                      **custom_values_from_form(cleaned, definitions)}
            try:
                self.instance.custom_fields = custom_values_clean(
                    business=self.instance.business_id, applies_to=target, values=values, definitions=definitions,
                    current=current)
            except ValidationError as exc:
                self.add_error(None, exc.messages)
            return cleaned

    for name, field in custom_form_fields(definitions).items():
        CustomFieldsForm.base_fields[name] = field
        CustomFieldsForm.declared_fields[name] = field
    CustomFieldsForm.__name__ = base.__name__
    return CustomFieldsForm


def _flatten(fields):
    for item in fields:
        if isinstance(item, (list, tuple)):
            yield from item
        else:
            yield item
