"""Foreign-key choices that survive hostile input (issue 12, item 11), in the admin
(`SafeChoicesAdminMixin`) and the staff UI's forms and list filters (`make_choices_safe`).

A posted foreign-key value is raw text. Django puts it straight into queries in
three places: the autocomplete widget, when it re-renders a form that did not validate
(`AutocompleteMixin.optgroups` filters `pk__in=[value]`: "abc" raises ValueError), an
admin action's selected ids (`pk__in`), and the choice fields on SQLite (a 20-digit id
raises OverflowError: SQLite integers are 64-bit). All were 500s. Here a value that cannot name a row (not a valid key for the
target field, or an integer outside the 64-bit range every backend stores) names none:
the field says "Select a valid choice" and the widget renders nothing selected.
"""
from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError

_BIGINT = (-(2**63), 2**63 - 1)  # the widest integer key column (BigAutoField) on any backend


def is_possible_key(model_field, value) -> bool:
    """Whether `value` could be a value of `model_field` (the target of a foreign key)."""
    try:
        key = model_field.to_python(value)
    except (ValidationError, TypeError, ValueError, OverflowError):
        return False
    if isinstance(key, int) and not isinstance(key, bool):
        return _BIGINT[0] <= key <= _BIGINT[1]
    return True


def _target_field(queryset, to_field_name):
    opts = queryset.model._meta
    return opts.get_field(to_field_name) if to_field_name else opts.pk


class _SafeKeyMixin:
    """For a ModelChoiceField (or a subclass, e.g. django-filter's)."""

    def to_python(self, value):
        if (value not in self.empty_values and value != getattr(self, "null_value", None)
                and not is_possible_key(_target_field(self.queryset, self.to_field_name), value)):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice",
                                  params={"value": str(value)[:50]})
        return super().to_python(value)


class _SafeKeysMixin:
    """For a ModelMultipleChoiceField (or a subclass)."""

    def _check_values(self, value):
        target = _target_field(self.queryset, self.to_field_name)
        for item in value if isinstance(value, (list, tuple, set, frozenset)) else ():
            if item != getattr(self, "null_value", None) and not is_possible_key(target, item):
                raise ValidationError(self.error_messages["invalid_pk_value"], code="invalid_pk_value",
                                      params={"pk": str(item)[:50]})
        return super()._check_values(value)


class SafeModelChoiceField(_SafeKeyMixin, forms.ModelChoiceField):
    pass


class SafeModelMultipleChoiceField(_SafeKeysMixin, forms.ModelMultipleChoiceField):
    pass


_SAFE_CLASSES = {forms.ModelChoiceField: SafeModelChoiceField,
                 forms.ModelMultipleChoiceField: SafeModelMultipleChoiceField}


def _safe_class(cls):
    if issubclass(cls, (_SafeKeyMixin, _SafeKeysMixin)):
        return None
    if cls not in _SAFE_CLASSES:
        mixin = _SafeKeysMixin if issubclass(cls, forms.ModelMultipleChoiceField) else _SafeKeyMixin
        _SAFE_CLASSES[cls] = type(f"Safe{cls.__name__}", (mixin, cls), {"__module__": __name__})
    return _SAFE_CLASSES[cls]


def make_choices_safe(form):
    """Give a built form's model choice fields (of any ModelChoiceField class) the checks
    above; a form's fields are its own copies, so only this form changes."""
    for field in form.fields.values():
        if isinstance(field, forms.ModelChoiceField):
            safe = _safe_class(type(field))
            if safe is not None:
                field.__class__ = safe


class _SafeAutocompleteMixin:
    def optgroups(self, name, value, attr=None):
        opts = self.field.remote_field.model._meta
        target = opts.get_field(getattr(self.field.remote_field, "field_name", None) or opts.pk.name)
        value = [v for v in value if v in ("", None) or is_possible_key(target, v)]
        return super().optgroups(name, value, attr)


class SafeAutocompleteSelect(_SafeAutocompleteMixin, AutocompleteSelect):
    pass


class SafeAutocompleteSelectMultiple(_SafeAutocompleteMixin, AutocompleteSelectMultiple):
    pass


class SafeChoicesAdminMixin:
    """For a ModelAdmin or inline: its foreign-key and many-to-many fields use the above,
    and an action's selected ids that no row can have are dropped before Django filters
    by them (`pk__in=["abc"]` was a 500; with none left Django says nothing was selected)."""

    def response_action(self, request, queryset):
        name = helpers.ACTION_CHECKBOX_NAME
        selected = request.POST.getlist(name)
        possible = [value for value in selected if is_possible_key(self.model._meta.pk, value)]
        if possible != selected:
            request.POST = request.POST.copy()
            request.POST.setlist(name, possible)
        return super().response_action(request, queryset)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        kwargs.setdefault("form_class", SafeModelChoiceField)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        kwargs.setdefault("form_class", SafeModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def admin_site_make_safe(site) -> None:
    """Give every ModelAdmin registered on `site` that does not have it yet (those of
    installed packages: django-celery-beat, axes...) the mixin above. Called once every app
    has registered its admin (config/urls.py), so no admin page answers hostile choices
    with a 500, whoever wrote it."""
    for model, model_admin in list(site._registry.items()):
        cls = type(model_admin)
        if isinstance(model_admin, SafeChoicesAdminMixin):
            continue
        site.unregister(model)
        site.register(model, type(f"Safe{cls.__name__}", (SafeChoicesAdminMixin, cls), {}))
