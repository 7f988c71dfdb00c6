"""Tenancy and roles for every admin page: the one place that decides who sees which rows.

Use `BusinessScopedAdminMixin` on a `ModelAdmin` and `BusinessScopedInlineMixin` on an
inline of any model with a `business` foreign key (`crm.models.BusinessOwned`):

    @admin.register(Invoice)
    class InvoiceAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
        finance_only = True          # owner/finance roles only (crm.models.FINANCE_ROLES)

    class RefundInline(BusinessScopedInlineMixin, admin.TabularInline):
        model = Refund
        finance_only = True

What the mixins guarantee for a member (a non-superuser, through `crm.tenancy.get_membership`):
- querysets (changelist, change/delete pages, autocomplete results) hold only the rows of
  the member's current business;
- the `business` field is never shown: on create it is set from the request before the
  form validates (so model clean() and the (business, ...) unique constraints run), and
  it is never changeable; inline rows take their parent's business;
- every foreign-key choice (selects, autocompletes, inlines) is limited to that business,
  so a crafted POST naming another business's row id fails as "Select a valid choice";
  the form also rejects any chosen row of another business (this covers superusers,
  whose choices are not narrowed because they may pick the business on create);
- permissions come from the member's role, not from Django model permissions (the demo
  finance user is_staff without any): `finance_only`, or an explicit `allowed_roles`.
  No membership means no access (403).
Superusers see every business, pick the business on create and cannot change it later.
Fields named `stripe_*` are read-only for everyone; with `stripe_managed_readonly` a row
that already carries a Stripe id is read-only as a whole (Stripe is its source of truth).
"""
from django.contrib.admin.widgets import AutocompleteMixin
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models
from django.forms.models import ModelChoiceField
from django.utils.text import capfirst

from crm.choice_fields import SafeChoicesAdminMixin
from crm.models import FINANCE_ROLES, Business, Role
from crm.tenancy import get_membership

ALL_ROLES = frozenset(Role)
OTHER_BUSINESS_ERROR = "Belongs to another business."

# How money is shown is finance's rule (finance.money.format_money), and crm sits below
# finance: FinanceConfig.ready() installs it here for crm's own money columns.
_money_formatter = None


def money_formatter_install(formatter) -> None:
    global _money_formatter
    _money_formatter = formatter


def format_money(amount, currency):
    """'1,234.50 USD', '1,500 JPY'; '-' when there is no amount (finance.money's rule)."""
    if _money_formatter is None:
        raise ImproperlyConfigured("No money formatter: the finance app installs it (INSTALLED_APPS).")
    return _money_formatter(amount, currency)


def stripe_field_names(model):
    return [f.name for f in model._meta.fields if f.name.startswith("stripe_")]


def _has_field(model, name):
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


class BusinessScopedFormMixin:
    """Mixed into the admin's generated ModelForm (see `get_form` / `get_formset`)."""

    scoped_business = None  # the member's Business; None for a superuser
    business_field = "business"  # None when the model has no business of its own

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.scoped_business is not None and self.business_field and self.instance._state.adding:
            # Set before validation: model clean() compares business ids and the
            # (business, code/number) unique constraints need it.
            setattr(self.instance, self.business_field, self.scoped_business)

    def form_business_id(self):
        if not self.business_field:
            return None
        if self.business_field in self.fields:  # a superuser picks the business
            chosen = self.cleaned_data.get(self.business_field)
            return chosen.pk if chosen is not None else None
        return getattr(self.instance, f"{self.business_field}_id", None)

    def clean(self):
        cleaned_data = super().clean()
        business_id = self.form_business_id()
        if business_id is None:
            return cleaned_data
        for name, value in list(cleaned_data.items()):
            if name == self.business_field or not isinstance(value, models.Model):
                continue
            other = getattr(value, "business_id", None)
            if other is not None and other != business_id:
                self.add_error(name, OTHER_BUSINESS_ERROR)
        return cleaned_data

    def _get_validation_exclusions(self):
        # Django skips model validation of fields that are not on the form, which would
        # skip UniqueConstraint(business, code) and turn a duplicate into an
        # IntegrityError (a 500). The business is set in __init__, so validate it.
        exclude = super()._get_validation_exclusions()
        if self.scoped_business is not None and self.business_field:
            exclude.discard(self.business_field)
        return exclude

    def add_error(self, field, error):
        # Model.clean() may name a field this form does not show (the hidden business, a
        # read-only field); Django would raise ValueError (a 500). Show it as a form error.
        if field is None:
            if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
                error = error.error_dict
            if isinstance(error, dict):
                error = self._fold_unknown_fields(error)
        super().add_error(field, error)

    def _fold_unknown_fields(self, errors):
        folded = {}
        for name, messages in errors.items():
            if name == NON_FIELD_ERRORS or name in self.fields:
                folded.setdefault(name, []).extend(messages if isinstance(messages, list) else [messages])
                continue
            try:
                label = capfirst(self._meta.model._meta.get_field(name).verbose_name)
            except FieldDoesNotExist:
                label = name
            folded.setdefault(NON_FIELD_ERRORS, []).extend(
                ValidationError(f"{label}: {message}") for message in ValidationError(messages).messages
            )
        return folded


class BusinessScopedFormSetMixin:
    """Inline formsets: new rows take the parent's business; FK choices load once."""

    business_field = "business"

    def add_fields(self, form, index):
        super().add_fields(form, index)
        parent_business_id = getattr(self.instance, "business_id", None)
        if self.business_field and form.instance._state.adding and parent_business_id:
            setattr(form.instance, f"{self.business_field}_id", parent_business_id)
        self._share_choices(form)

    def _share_choices(self, form):
        # Every row's select would run its own query for the same choices (N+1 on a
        # change page with many inline rows); evaluate each once per formset.
        cache = self.__dict__.setdefault("_shared_choices", {})
        for name, field in form.fields.items():
            if not isinstance(field, ModelChoiceField) or field.widget.is_hidden:
                continue  # the row's own hidden `id` field renders no choices
            widget = getattr(field.widget, "widget", field.widget)
            if isinstance(widget, AutocompleteMixin):
                continue  # renders only the selected option
            if name not in cache:
                cache[name] = list(iter(field.choices))  # iter(): no COUNT query first
            field.choices = cache[name]


class BusinessScopedBase(SafeChoicesAdminMixin):
    """What ModelAdmins and inlines share: roles, querysets, foreign-key choices (which
    also refuse a posted key that cannot name a row: `crm.choice_fields`)."""

    business_field = "business"
    finance_only = False
    allowed_roles = None  # overrides finance_only when set
    stripe_managed_readonly = False

    # --- who ------------------------------------------------------------------------
    def get_allowed_roles(self):
        if self.allowed_roles is not None:
            return frozenset(self.allowed_roles)
        return FINANCE_ROLES if self.finance_only else ALL_ROLES

    def get_scope_business(self, request):
        """The member's business, or None (superuser: everything; others: nothing)."""
        membership = get_membership(request)
        return membership.business if membership else None

    def has_role_access(self, request):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        membership = get_membership(request)
        return membership is not None and membership.role in self.get_allowed_roles()

    def object_business_id(self, obj):
        if self.business_field is None:
            return None
        return getattr(obj, f"{self.business_field}_id", None)

    def object_in_scope(self, request, obj):
        if obj is None or request.user.is_superuser:
            return True
        business = self.get_scope_business(request)
        return business is not None and self.object_business_id(obj) == business.pk

    def has_module_permission(self, request):
        return self.has_role_access(request)

    # --- which rows -------------------------------------------------------------------
    def scope_queryset(self, request, queryset):
        if request.user.is_superuser:
            return queryset
        business = self.get_scope_business(request)
        if business is None or not self.business_field:
            return queryset.none()
        return queryset.filter(**{f"{self.business_field}_id": business.pk})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def scoped_choices(self, request, model, queryset):
        """Limit a foreign key's choices to the member's business (None: leave as is)."""
        if request.user.is_superuser:
            return queryset
        business = self.get_scope_business(request)
        if queryset is None:
            queryset = model._default_manager.all()
        if business is None:
            return queryset.none()
        if model is Business:
            return queryset.filter(pk=business.pk)
        if model is get_user_model():
            return queryset.filter(memberships__business=business)
        if _has_field(model, "business"):
            return queryset.filter(business=business)
        return queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.remote_field.model
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = self.get_field_queryset(None, db_field, request)
        queryset = self.scoped_choices(request, model, queryset)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        model = db_field.remote_field.model
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = self.get_field_queryset(None, db_field, request)
        queryset = self.scoped_choices(request, model, queryset)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- which fields -----------------------------------------------------------------
    def hides_business(self, request):
        return bool(self.business_field) and not request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        readonly += [name for name in stripe_field_names(self.model) if name not in readonly]
        if self.stripe_managed_readonly and obj is not None and self.is_stripe_managed(obj):
            readonly += [name for name in self.editable_field_names(request) if name not in readonly]
        return readonly

    def is_stripe_managed(self, obj):
        return any(getattr(obj, name) for name in stripe_field_names(self.model))

    def editable_field_names(self, request):
        names = [f.name for f in self.model._meta.fields if f.editable and not f.primary_key]
        if self.business_field:
            names = [name for name in names if name != self.business_field]
        return names

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or ())
        if self.hides_business(request) and self.business_field not in exclude:
            exclude.append(self.business_field)
        return exclude

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if self.hides_business(request):
            fields = [f for f in fields if f != self.business_field]
        return fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self.hides_business(request):
            return fieldsets
        return [
            (name, {**options, "fields": _without(options.get("fields", ()), self.business_field)})
            for name, options in fieldsets
        ]

    def scoped_form_class(self, request, base):
        return type(
            f"BusinessScoped{base.__name__}",
            (BusinessScopedFormMixin, base),
            {
                "scoped_business": None if request.user.is_superuser else self.get_scope_business(request),
                "business_field": self.business_field,
            },
        )


def _without(fields, name):
    result = []
    for item in fields:
        if isinstance(item, (list, tuple)):
            item = type(item)(f for f in item if f != name)
            if item:
                result.append(item)
        elif item != name:
            result.append(item)
    return result


class NoWritesAdminMixin:
    """Rows the app writes itself (from Stripe, by its services): shown, never added,
    changed or deleted in the admin. For ModelAdmins and inlines alike; put it before the
    business-scoped mixin in the bases so it wins."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BusinessScopedAdminMixin(BusinessScopedBase):
    """For ModelAdmin. Put it before admin.ModelAdmin in the bases."""

    def has_view_permission(self, request, obj=None):
        return self.has_role_access(request) and self.object_in_scope(request, obj)

    def has_add_permission(self, request):
        return self.has_role_access(request)

    def has_change_permission(self, request, obj=None):
        return self.has_role_access(request) and self.object_in_scope(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_role_access(request) and self.object_in_scope(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        # The business is chosen once (by a superuser) and never changes.
        if obj is not None and self.business_field and not self.hides_business(request):
            readonly = [self.business_field, *[f for f in readonly if f != self.business_field]]
        return readonly

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = self.scoped_form_class(request, kwargs.get("form", self.form))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_search_results(self, request, queryset, search_term):
        # Autocomplete widgets call this on the *target* admin: re-apply the scope so
        # no path into search can widen it.
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return self.scope_queryset(request, queryset), may_have_duplicates


class BusinessScopedInlineMixin(BusinessScopedBase):
    """For inlines. The parent admin has already checked the parent row's business."""

    select_related_fields = ()  # joined for the rows' read-only columns and __str__

    def has_view_permission(self, request, obj=None):
        return self.has_role_access(request)

    def has_add_permission(self, request, obj=None):
        return self.has_role_access(request)

    def has_change_permission(self, request, obj=None):
        return self.has_role_access(request)

    def has_delete_permission(self, request, obj=None):
        return self.has_role_access(request)

    def hides_business(self, request):
        # Inline rows always take the parent's business, superuser or not.
        return bool(self.business_field)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.select_related_fields:
            queryset = queryset.select_related(*self.select_related_fields)
        return queryset

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = self.scoped_form_class(request, kwargs.get("form", self.form))
        formset = super().get_formset(request, obj, **kwargs)
        return type(
            f"BusinessScoped{formset.__name__}",
            (BusinessScopedFormSetMixin, formset),
            {"business_field": self.business_field},
        )
