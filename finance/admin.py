"""Finance admin: billables, invoices (lines, payments), payments (refunds), refunds.

Owner and finance roles only (`finance_only`); tenancy, roles, read-only Stripe ids and
foreign-key scoping come from `crm.admin_base`. Money is shown with its currency at the
currency's precision (`format_money`). Statuses are read-only here: they move with the
invoice workflow and Stripe's webhooks, whose rules live in the services.
"""
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from crm.admin_base import BusinessScopedAdminMixin, BusinessScopedInlineMixin, NoWritesAdminMixin
from crm.admin_extensions import admin_extend
from crm.custom_fields_admin import CustomFieldsAdminMixin
from crm.models import CustomFieldTarget, Individual, Opportunity, Organization, Ticket
from finance.models import (
    Billable, BillableStatus, CreditNote, Dispute, Invoice, InvoiceLine, InvoiceStatus, Payment, Refund,
)
from finance.exports import FORMATS, export_response
from finance.money import format_money


def external_link(url, text):
    """A link to a Stripe-hosted page; anything but http(s) is not made clickable."""
    if url and url.lower().startswith(("https://", "http://")):
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text)
    return "-"


def money_column(field, description, currency_from=lambda obj: obj.currency):
    """A list/readonly column showing `field` with its currency, sortable by the field."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return format_money(getattr(obj, field), currency_from(obj))

    column.__name__ = f"{field}_display"
    return column


def discount_text(obj):
    if obj.discount_percent is not None:
        return f"{obj.discount_percent.normalize():f} %"
    if obj.discount_amount:
        return format_money(obj.discount_amount, obj.currency)
    return "-"


class ExportActionsMixin:
    """"Export selected as CSV / XLSX" on the changelist (finance.exports), added in
    `get_actions` so that higher apps replacing `actions` (stripe_integration's invoice
    actions) keep them. The rows are the selected ones of the user's business."""

    export_kind = None

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR in request.GET or not self.has_view_permission(request):
            return actions
        for fmt in FORMATS:
            func = _export_action(self.export_kind, fmt)
            actions[func.__name__] = (func, func.__name__, func.short_description)
        return actions


def _export_action(kind, fmt):
    def export(modeladmin, request, queryset):
        return export_response(kind, fmt, queryset)

    export.__name__ = f"export_{fmt}"
    export.short_description = f"Export selected {kind} as {fmt.upper()}"
    return export


# --- billables ------------------------------------------------------------------------


class BillableInlineFormSet(BaseInlineFormSet):
    """A billable on an invoice is history: it can't be edited or deleted from a parent page."""

    def clean(self):
        super().clean()
        for form in self.forms:
            instance = form.instance
            if instance.pk is None or instance.status == BillableStatus.UNBILLED:
                continue
            status = instance.get_status_display().lower()
            if form.cleaned_data.get("DELETE"):
                raise ValidationError(f"“{instance}” is {status}; only unbilled billables can be deleted.")
            if form.has_changed():
                raise ValidationError(f"“{instance}” is {status}; only unbilled billables can be edited.")


class BillableInline(BusinessScopedInlineMixin, admin.TabularInline):
    """Billables on a contact (Individual, Organization), an opportunity or a ticket page.

    Each parent's own foreign key (bill_to, opportunity or ticket) is filled in by Django.
    """

    model = Billable
    formset = BillableInlineFormSet
    finance_only = True
    extra = 0
    show_change_link = True
    fields = (
        "bill_to", "service", "description", "quantity", "unit_price", "currency", "discount_percent",
        "discount_amount", "vat_rate", "line_type", "status", "invoice",
    )
    readonly_fields = ("status", "invoice")
    select_related_fields = ("service", "invoice")


class DefaultCurrencyMixin:
    """New rows start in the business's default currency."""

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        business = self.get_scope_business(request)
        if business is not None:
            initial.setdefault("currency", business.default_currency)
        return initial


@admin.register(Billable)
class BillableAdmin(ExportActionsMixin, DefaultCurrencyMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    export_kind = "billables"
    list_display = (
        "bill_to", "description", "service", "quantity", "unit_price_display", "currency", "discount_display",
        "vat_display", "line_type", "status", "invoice", "created_at",
    )
    list_display_links = ("description",)
    list_select_related = ("bill_to", "service", "invoice")
    list_filter = ("status", "currency", "line_type", "created_at")
    search_fields = ("description", "bill_to__name", "service__code", "service__name")
    date_hierarchy = "created_at"
    autocomplete_fields = ("bill_to", "opportunity", "ticket", "service")
    fields = (
        "business", "bill_to", "opportunity", "ticket", "service", "description", "service_date", "quantity",
        "unit_price", "uses_list_price", "currency", "discount_percent", "discount_amount", "vat_rate",
        "prices_include_vat", "line_type", "status", "invoice", "created_at", "updated_at",
    )
    readonly_fields = ("uses_list_price", "status", "invoice", "created_at", "updated_at")

    unit_price_display = money_column("unit_price", "unit price")

    @admin.display(description="discount")
    def discount_display(self, obj):
        return discount_text(obj)

    @admin.display(description="VAT", ordering="vat_rate")
    def vat_display(self, obj):
        text = f"{obj.vat_rate.normalize():f} %"
        return f"{text} incl." if obj.prices_include_vat else text

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status != BillableStatus.UNBILLED:
            # Invoiced, paid or void: the invoice holds a snapshot; keep the source as it was.
            readonly += [name for name in self.editable_field_names(request) if name not in readonly]
        return readonly

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status == BillableStatus.UNBILLED)



# --- invoices -------------------------------------------------------------------------


class InvoiceLineInline(NoWritesAdminMixin, BusinessScopedInlineMixin, admin.TabularInline):
    """Lines are snapshots written when the invoice is built: shown, never edited."""

    model = InvoiceLine
    finance_only = True
    extra = 0
    fields = (
        "position", "description", "service", "billable", "quantity", "unit_price_display",
        "discount_amount_display", "vat_rate", "line_type", "subtotal_display", "tax_display", "total_display",
        "stripe_line_id",
    )
    readonly_fields = fields
    select_related_fields = ("invoice", "service", "billable__service")

    unit_price_display = money_column("unit_price", "unit price", lambda line: line.invoice.currency)
    discount_amount_display = money_column("discount_amount", "discount", lambda line: line.invoice.currency)
    subtotal_display = money_column("subtotal", "subtotal", lambda line: line.invoice.currency)
    tax_display = money_column("tax", "tax", lambda line: line.invoice.currency)
    total_display = money_column("total", "total", lambda line: line.invoice.currency)


class PaymentInline(NoWritesAdminMixin, BusinessScopedInlineMixin, admin.TabularInline):
    """Payment history of an invoice; a payment is recorded and edited on its own page."""

    model = Payment
    finance_only = True
    extra = 0
    show_change_link = True
    fields = (
        "status", "amount_display", "amount_refunded_display", "fee_display", "method", "card_brand",
        "card_last4", "paid_at", "failure_message", "stripe_payment_intent_id",
    )
    readonly_fields = fields

    amount_display = money_column("amount", "amount")
    amount_refunded_display = money_column("amount_refunded", "refunded")
    fee_display = money_column("fee", "fee")



class CreditNoteInline(NoWritesAdminMixin, BusinessScopedInlineMixin, admin.TabularInline):
    """An invoice's credit notes (issue 13), as Stripe has them; made with the integration's
    "Refund / credit note" button, never here."""

    model = CreditNote
    fk_name = "invoice"
    finance_only = True
    extra = 0
    show_change_link = True
    fields = ("number", "status", "push_status", "amount_display", "pre_payment_amount", "refund_amount",
              "credit_amount", "out_of_band_amount", "reason", "memo", "stripe_refund_id", "created_at")
    readonly_fields = fields

    amount_display = money_column("amount", "amount")


@admin.register(Invoice)
class InvoiceAdmin(ExportActionsMixin, DefaultCurrencyMixin, CustomFieldsAdminMixin, BusinessScopedAdminMixin,
                   admin.ModelAdmin):
    finance_only = True
    custom_fields_target = CustomFieldTarget.INVOICE
    export_kind = "invoices"
    stripe_managed_readonly = True
    list_display = (
        "number", "bill_to", "status", "currency", "total_display", "amount_paid_display",
        "amount_remaining_display", "due_date", "created_at", "hosted_invoice_link", "invoice_pdf_link",
    )
    list_select_related = ("bill_to",)
    list_filter = ("status", "currency", "collection_method", "due_date", "disputed")
    search_fields = ("number", "stripe_invoice_id", "stripe_number", "bill_to__name")
    date_hierarchy = "created_at"
    autocomplete_fields = ("bill_to",)
    inlines = [InvoiceLineInline, PaymentInline, CreditNoteInline]
    fieldsets = (
        (None, {"fields": ("business", "number", "bill_to", "currency", "collection_method", "due_date", "status")}),
        ("Amounts", {"fields": (
            "subtotal_display", "discount_total_display", "tax_total_display", "total_display",
            "amount_paid_display", "amount_remaining_display", "amount_refunded_display",
            "credited_pre_payment_display", "credited_post_payment_display",
        )}),
        ("Stripe", {"fields": (
            "hosted_invoice_link", "invoice_pdf_link", "stripe_invoice_id", "stripe_number", "stripe_customer_id",
            "finalized_at", "paid_at", "voided_at", "disputed", "disputed_at", "last_error",
        )}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "status", "subtotal_display", "discount_total_display", "tax_total_display", "total_display",
        "amount_paid_display", "amount_remaining_display", "hosted_invoice_link", "invoice_pdf_link",
        "finalized_at", "paid_at", "voided_at", "last_error", "created_at", "updated_at",
        # Set by Stripe's webhooks (issue 7): refunds and disputes.
        "amount_refunded_display", "disputed", "disputed_at",
        # Set from Stripe's invoice (issue 13): what its credit notes credited.
        "credited_pre_payment_display", "credited_post_payment_display",
    )

    subtotal_display = money_column("subtotal", "subtotal")
    discount_total_display = money_column("discount_total", "discounts")
    tax_total_display = money_column("tax_total", "tax")
    total_display = money_column("total", "total")
    amount_paid_display = money_column("amount_paid", "paid")
    amount_remaining_display = money_column("amount_remaining", "remaining")
    amount_refunded_display = money_column("amount_refunded", "refunded")
    credited_pre_payment_display = money_column("credited_pre_payment", "credited before payment")
    credited_post_payment_display = money_column("credited_post_payment", "credited after payment")

    @admin.display(description="hosted invoice")
    def hosted_invoice_link(self, obj):
        return external_link(obj.hosted_invoice_url, "Open")

    @admin.display(description="PDF")
    def invoice_pdf_link(self, obj):
        return external_link(obj.invoice_pdf_url, "PDF")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None:
            # Bill-to and currency follow from the billables (Invoice.check_follows_billables).
            readonly += [name for name in ("bill_to", "currency") if name not in readonly]
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            # Finalized at Stripe: what the customer was sent can't change here.
            readonly += [name for name in self.editable_field_names(request) if name not in readonly]
        return readonly

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or (obj.status == InvoiceStatus.DRAFT and not obj.stripe_invoice_id))



# --- payments and refunds -------------------------------------------------------------


class RefundInline(BusinessScopedInlineMixin, admin.TabularInline):
    model = Refund
    finance_only = True
    extra = 0
    show_change_link = True
    fields = ("amount", "currency", "reason", "status", "stripe_refund_id", "created_at")
    readonly_fields = ("created_at",)

    def _payment_is_manual(self, payment):
        # Refunds of a Stripe payment come from Stripe (webhooks); only payments recorded
        # by hand (paid outside Stripe) take refunds recorded by hand.
        return payment is None or not any((payment.stripe_payment_intent_id, payment.stripe_charge_id))

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and self._payment_is_manual(obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._payment_is_manual(obj)

    def has_delete_permission(self, request, obj=None):
        return (request.user.is_superuser and super().has_delete_permission(request, obj)
                and self._payment_is_manual(obj))


@admin.register(Payment)
class PaymentAdmin(ExportActionsMixin, CustomFieldsAdminMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    custom_fields_target = CustomFieldTarget.PAYMENT
    export_kind = "payments"
    stripe_managed_readonly = True
    list_display = (
        "__str__", "invoice", "bill_to", "amount_display", "status", "method", "card", "fee_display",
        "net_display", "amount_refunded_display", "paid_at", "stripe_payment_intent_id",
    )
    list_select_related = ("invoice__bill_to",)
    list_filter = ("status", "method", "currency", "paid_at")
    search_fields = (
        "invoice__number", "invoice__bill_to__name", "stripe_payment_intent_id", "stripe_charge_id", "card_last4",
    )
    date_hierarchy = "created_at"
    autocomplete_fields = ("invoice",)
    inlines = [RefundInline]
    readonly_fields = ("created_at", "updated_at")

    amount_display = money_column("amount", "amount")
    fee_display = money_column("fee", "fee")
    net_display = money_column("net", "net")
    amount_refunded_display = money_column("amount_refunded", "refunded")

    @admin.display(description="bill to", ordering="invoice__bill_to__name")
    def bill_to(self, obj):
        return obj.invoice.bill_to

    # Payments come from Stripe (webhooks) or from "Mark paid outside Stripe" on an
    # invoice: finance users neither add nor delete them here; a superuser still can.
    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    @admin.display(description="card")
    def card(self, obj):
        return f"{obj.card_brand} •••• {obj.card_last4}".strip() if obj.card_last4 else "-"


@admin.register(Refund)
class RefundAdmin(ExportActionsMixin, BusinessScopedAdminMixin, admin.ModelAdmin):
    finance_only = True
    export_kind = "refunds"
    stripe_managed_readonly = True
    list_display = (
        "__str__", "payment", "invoice", "amount_display", "status", "reason", "stripe_refund_id", "created_at",
    )
    list_select_related = ("payment__invoice",)
    list_filter = ("status", "currency", "created_at")
    search_fields = ("stripe_refund_id", "reason", "payment__invoice__number", "payment__stripe_payment_intent_id")
    date_hierarchy = "created_at"
    autocomplete_fields = ("payment",)
    readonly_fields = ("created_at", "updated_at")

    amount_display = money_column("amount", "amount")

    @admin.display(description="invoice", ordering="payment__invoice__number")
    def invoice(self, obj):
        return obj.payment.invoice

    # Refunds come from Stripe; a refund of a payment made outside Stripe is recorded on
    # that payment's page (RefundInline). Never added or deleted here but by a superuser.
    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


@admin.register(Dispute)
class DisputeAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """Read-only: disputes come from Stripe's dispute events and are answered in Stripe."""

    finance_only = True
    list_display = ("stripe_id", "invoice", "status", "reason", "amount_display", "fee_display",
                    "evidence_due_by", "evidence_submitted", "opened_at", "closed_at")
    list_select_related = ("invoice",)
    list_filter = ("status", "reason", "currency", "evidence_due_by")
    search_fields = ("stripe_id", "invoice__number", "invoice__bill_to__name", "payment__stripe_payment_intent_id")
    ordering = ("evidence_due_by", "pk")

    amount_display = money_column("amount", "amount")
    fee_display = money_column("fee", "fee")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- billables on the CRM's pages -------------------------------------------------------
# crm knows nothing of billables (it sits below finance): finance adds them to the contact,
# opportunity and ticket pages of crm's admin.
for _model in (Individual, Organization, Opportunity, Ticket):
    admin_extend(_model, inlines=[*admin.site._registry[_model].inlines, BillableInline])


@admin.register(CreditNote)
class CreditNoteAdmin(BusinessScopedAdminMixin, admin.ModelAdmin):
    """Credit notes (issue 13), read-only: Stripe is their source of truth, and they are
    made from the invoice (the "Refund / credit note" button), never added or deleted here."""

    finance_only = True
    list_display = ("__str__", "invoice", "status", "push_status", "amount_display", "refund_amount", "credit_amount",
                    "reason", "stripe_id", "created_at")
    list_select_related = ("invoice",)
    list_filter = ("status", "push_status", "reason", "currency", "created_at")
    search_fields = ("number", "stripe_id", "stripe_refund_id", "invoice__number", "memo")
    date_hierarchy = "created_at"
    amount_display = money_column("amount", "amount")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["amount_display"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
