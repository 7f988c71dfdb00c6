"""CRM admin: businesses and their members, contacts, opportunities, tickets.

Tenancy and roles come from `crm.admin_base`; contacts, opportunities and tickets are open
to every role of the business, their billables inline to owner/finance only.
"""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from crm.admin_base import BusinessScopedAdminMixin, BusinessScopedInlineMixin, format_money
from crm.audit import AuditEntry
from crm.choice_fields import SafeChoicesAdminMixin
from crm.custom_fields_admin import CustomFieldsAdminMixin
from crm.models import (
    Business, Contact, CustomFieldDefinition, CustomFieldTarget, Individual, Membership, Opportunity, Organization,
    Role, Ticket,
)

# --- businesses and members -------------------------------------------------------------


class MembershipInline(BusinessScopedInlineMixin, admin.TabularInline):
    """Owners change roles and remove members of their business. Adding a member is for
    superusers: choosing a user would list the users of every business."""

    model = Membership
    allowed_roles = {Role.OWNER}
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    select_related_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if request.user.is_superuser else ["user", *readonly]

    def hides_business(self, request):
        return False  # `business` is this inline's own foreign key: Django fills it in

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Business)
class BusinessAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """Superusers manage businesses; an owner sees their own and manages its members."""

    business_field = None  # the row *is* the business
    allowed_roles = {Role.OWNER}
    list_display = ("name", "slug", "country", "default_currency", "finance_enabled", "member_count", "created_at")
    list_filter = ("finance_enabled", "country", "default_currency")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def scope_queryset(self, request, queryset):
        if request.user.is_superuser:
            return queryset
        business = self.get_scope_business(request)
        return queryset.filter(pk=business.pk) if business is not None else queryset.none()

    def object_business_id(self, obj):
        return obj.pk

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj):
        return obj.member_count

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ("created_at",)
        return ("name", "slug", "country", "default_currency", "finance_enabled", "created_at")

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if request.user.is_superuser else {}

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ("business", "role", "created_at")
    readonly_fields = ("created_at",)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(SafeChoicesAdminMixin, DjangoUserAdmin):
    """Django's user admin plus memberships, for superusers only: users span businesses, so
    no per-business role may list them (owners manage members on their business page)."""

    inlines = [*DjangoUserAdmin.inlines, UserMembershipInline]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(SafeChoicesAdminMixin, DjangoGroupAdmin):
    """Django's group admin; its permission choices refuse ids no row can have."""


# --- contacts -----------------------------------------------------------------------


@admin.register(Contact)
class ContactAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """Every contact of either kind, read-only: the search behind the bill-to and contact
    autocompletes. Contacts are edited on their Individual / Organization pages."""

    list_display = ("name", "kind", "edit_link", "city", "country", "created_at")
    list_filter = ("kind", "country")
    search_fields = ("name", "as_individual__email", "as_organization__billing_email")

    @admin.display(description="edit")
    def edit_link(self, obj):
        url = reverse(f"admin:crm_{obj.kind}_change", args=[obj.pk])
        return format_html('<a href="{}">Open {}</a>', url, obj.get_kind_display().lower())

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PersonInline(BusinessScopedInlineMixin, admin.TabularInline):
    model = Individual
    fk_name = "organization"
    extra = 0
    show_change_link = True
    fields = ("name", "email", "phone")
    verbose_name = "person"
    verbose_name_plural = "people"


@admin.register(Individual)
class IndividualAdmin(CustomFieldsAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    custom_fields_target = CustomFieldTarget.CONTACT
    list_display = ("name", "email", "organization", "phone", "city", "country", "created_at")
    list_select_related = ("organization",)
    list_filter = ("country", "created_at")
    search_fields = ("name", "email", "phone", "organization__name")
    autocomplete_fields = ("organization",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(Organization)
class OrganizationAdmin(CustomFieldsAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    custom_fields_target = CustomFieldTarget.CONTACT
    list_display = ("name", "billing_email", "tax_id", "city", "country", "people_count", "created_at")
    list_filter = ("country", "created_at")
    search_fields = ("name", "billing_email", "tax_id")
    readonly_fields = ("created_at", "updated_at")
    inlines = [PersonInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(people_count=Count("people"))

    @admin.display(description="people", ordering="people_count")
    def people_count(self, obj):
        return getattr(obj, "people_count", None)


@admin.register(CustomFieldDefinition)
class CustomFieldDefinitionAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """The business's custom fields (owner/finance). Values are edited on the contact,
    invoice and payment pages; the Stripe integration maps them to Stripe."""

    finance_only = True
    list_display = ("label", "applies_to", "key", "field_type", "created_at")
    list_filter = ("applies_to", "field_type")
    search_fields = ("key", "label")
    readonly_fields = ("created_at", "updated_at")


# --- pipeline and support -----------------------------------------------------------


@admin.register(Opportunity)
class OpportunityAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    list_display = ("title", "contact", "stage", "value_display", "close_date", "owner", "created_at")
    list_select_related = ("contact", "owner")
    list_filter = ("stage", "currency", "close_date")
    search_fields = ("title", "contact__name")
    date_hierarchy = "created_at"
    autocomplete_fields = ("contact",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="value", ordering="value")
    def value_display(self, obj):
        return format_money(obj.value, obj.currency)


@admin.register(Ticket)
class TicketAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    list_display = ("subject", "contact", "status", "priority", "created_at", "updated_at")
    list_select_related = ("contact",)
    list_filter = ("status", "priority", "created_at")
    search_fields = ("subject", "description", "contact__name")
    date_hierarchy = "created_at"
    autocomplete_fields = ("contact",)
    readonly_fields = ("created_at", "updated_at")


# --- the audit log (issue 14): read-only ----------------------------------------------------

@admin.register(AuditEntry)
class AuditEntryAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    list_display = ("created_at", "business", "user", "action", "object_label", "amount", "currency", "ip_address")
    list_filter = ("action",)
    search_fields = ("object_label", "object_id", "detail", "user__username")
    date_hierarchy = "created_at"
    list_select_related = ("business", "user")
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    # Entries are only ever added, by the service functions that act.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
