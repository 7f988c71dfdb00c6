"""The admin's side of "invoices from billables, in Stripe" (issue 6), mixed into
`finance.admin`'s BillableAdmin and InvoiceAdmin by `stripe_integration.admin.extensions`
(finance imports nothing of Stripe):

- billables: the `generate_invoice` action, with an intermediate preview page (per bill-to
  and currency: lines, subtotal, discounts, tax, total), then "Send to Stripe";
- invoices: the push state beside Stripe's status, Stripe's message and the totals that
  differed, and the actions Stripe allows (retry, approve, void, mark uncollectible, mark
  paid outside Stripe, resend, delete draft) as list actions and as buttons on the page.

Workflows call the `stripe_integration.invoicing` services and report with message_user, as
Django's own admin actions do; a refused action is a message, never a 500.
"""
from collections import defaultdict

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from finance.invoices import NothingToInvoice, billables_for_invoicing, invoice_draft, invoice_release_billables
from finance.models import Invoice, InvoicePushStatus
from finance.money import format_money, from_minor
from finance.validators import po_number_problem


class BillableInvoicingMixin:
    actions = ["generate_invoice"]

    @admin.action(description="Generate invoice (preview, then send to Stripe)")
    def generate_invoice(self, request, queryset):
        from stripe_integration.invoicing.push import build_options, invoices_generate
        from stripe_integration.models import IntegrationSettings

        by_business = defaultdict(list)
        for business_id, pk in queryset.order_by().values_list("business_id", "pk"):
            by_business[business_id].append(pk)
        businesses = {b.pk: b for b in _businesses(by_business)}
        if request.POST.get("apply"):
            made = 0
            po_number = request.POST.get("po_number", "").strip()
            if problem := po_number_problem(po_number):
                self.message_user(request, f"{problem} Nothing was sent.", messages.ERROR)
                return None
            for business_id, ids in by_business.items():
                try:
                    result = invoices_generate(business=businesses[business_id], billable_ids=ids,
                                               po_number=po_number,
                                               approved=request.POST.get("approved") == "on")
                except NothingToInvoice as exc:
                    self.message_user(request, f"{businesses[business_id]}: {exc}", messages.ERROR)
                    continue
                made += len(result.invoices)
                self.message_user(request, f"{businesses[business_id]}: created "
                                  + ", ".join(inv.number for inv in result.invoices) + "; sending to Stripe.")
                if result.left_out:
                    self.message_user(request, f"{len(result.left_out)} billable(s) left out: "
                                      + "; ".join(sorted({r for _, r in result.left_out})), messages.WARNING)
            return None
        previews = []
        for business_id, ids in by_business.items():
            business = businesses[business_id]
            billables = list(billables_for_invoicing(business=business, ids=ids).select_related("invoice"))
            previews.append((business, invoice_draft(billables=billables, options=build_options(business=business)),
                             IntegrationSettings.for_business(business).only_approved))
        context = {
            **self.admin_site.each_context(request), "title": "Generate invoice: preview", "opts": self.model._meta,
            "previews": previews, "queryset": queryset, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "any_invoice": any(d.invoices for _, d, _ in previews),
            "only_approved": any(flag for _, _, flag in previews),
        }
        return TemplateResponse(request, "admin/finance/billable/generate_invoice.html", context)


def _businesses(ids):
    from crm.models import Business

    return Business.objects.filter(pk__in=list(ids))


def _run_action(modeladmin, request, queryset, action):
    from stripe_integration.invoicing.push import InvoicingError
    from stripe_integration.invoicing.actions import invoice_action
    from stripe_integration.runs.disable import integration_enabled_only, integration_skipped_messages

    done = 0
    invoices, skipped = integration_enabled_only(queryset.select_related("business", "bill_to"),
                                                 business_id_of=lambda invoice: invoice.business_id)
    for line in integration_skipped_messages(skipped, "invoice(s)"):
        modeladmin.message_user(request, line, messages.WARNING)
    for invoice in invoices:
        try:
            modeladmin.message_user(request, invoice_action(invoice=invoice, action=action, user=request.user))
            done += 1
        except InvoicingError as exc:
            modeladmin.message_user(request, f"{invoice.number}: {exc.message}", messages.ERROR)
    return done


def confirm_page(modeladmin, request, invoices, action, *, form_action, hidden, back_url):
    """The intermediate page of a void / mark uncollectible / delete draft: what will
    happen to each invoice; its form posts the same action again with `confirmed=yes`."""
    from stripe_integration.invoicing.actions import ACTION_LABELS, invoice_actions
    from stripe_integration.invoicing.confirm import action_consequences
    from stripe_integration.runs.disable import integrations_disabled

    disabled = integrations_disabled(i.business_id for i in invoices)
    items, skipped = [], []
    for invoice in invoices:
        if invoice.business_id in disabled:
            skipped.append(f"{invoice.number} (the Stripe integration of {invoice.business.name} is disabled or paused)")
        elif action in invoice_actions(invoice):
            items.append((invoice, action_consequences(invoice, action)))
        else:
            skipped.append(invoice.number)
    context = {
        **modeladmin.admin_site.each_context(request), "title": f"{ACTION_LABELS[action]}: are you sure?",
        "opts": modeladmin.model._meta, "label": ACTION_LABELS[action], "action": action, "items": items,
        "skipped": skipped, "form_action": form_action, "hidden": hidden, "back_url": back_url,
    }
    return TemplateResponse(request, "admin/finance/invoice/confirm_action.html", context)


def _list_action(action, description):
    from stripe_integration.invoicing.confirm import CONFIRM_FIELD, needs_confirmation

    def run(modeladmin, request, queryset):
        if needs_confirmation(action) and request.POST.get(CONFIRM_FIELD) != "yes":
            opts = modeladmin.model._meta
            ids = list(queryset.values_list("pk", flat=True))
            return confirm_page(
                modeladmin, request, list(queryset.select_related("bill_to", "business")), action, form_action="",
                hidden=[("action", run.__name__), *((admin.helpers.ACTION_CHECKBOX_NAME, pk) for pk in ids)],
                back_url=reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        _run_action(modeladmin, request, queryset, action)

    run.__name__ = f"stripe_{action}"
    return admin.action(description=description)(run)


@admin.action(description="Mark paid outside Stripe (date, method, reference)")
def stripe_mark_paid_out_of_band(modeladmin, request, queryset):
    from stripe_integration.invoicing.forms import admin_mark_paid_out_of_band

    return admin_mark_paid_out_of_band(modeladmin, request, queryset)


PUSH_FIELDS = ("push_status", "push_step", "push_attempts", "approved", "po_number", "footer", "days_until_due",
               "push_mismatch_display", "stripe_actions")


class InvoiceStripeMixin:
    actions = [
        _list_action("retry", "Retry sending to Stripe"),
        _list_action("approve", "Approve and send to Stripe"),
        _list_action("resend", "Resend from Stripe"),
        stripe_mark_paid_out_of_band,
        _list_action("mark_uncollectible", "Mark uncollectible in Stripe"),
        _list_action("void", "Void in Stripe (billables unbilled again)"),
        _list_action("delete_draft", "Delete draft (here and in Stripe)"),
    ]

    def get_list_display(self, request):
        return (*super().get_list_display(request), "stripe_number", "push_status")

    def get_list_filter(self, request):
        return (*super().get_list_filter(request), "push_status", "approved")

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        fieldsets.insert(1, ("Sending to Stripe", {"fields": PUSH_FIELDS}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # All set when the invoice is built (PO number in the preview, the rest from the
        # integration settings) and sent to Stripe as they are: not edited here.
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly + [f for f in PUSH_FIELDS if f not in readonly]

    @admin.display(description="totals that differ")
    def push_mismatch_display(self, obj):
        diff = {k: v for k, v in (obj.push_mismatch or {}).items() if isinstance(v, dict)}
        if not diff:
            return "-"
        cur = obj.push_mismatch.get("currency", obj.currency)
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (name, format_money(from_minor(d["crm"], cur), cur), format_money(from_minor(d["stripe"], cur), cur),
             format_money(from_minor(d["difference"], cur), cur)) for name, d in diff.items()))
        return format_html("<table><tr><th>figure</th><th>CRM</th><th>Stripe</th><th>difference</th></tr>{}</table>"
                           "<p>After {}.</p>", rows, obj.push_mismatch.get("stage", "?"))

    @admin.display(description="actions")
    def stripe_actions(self, obj):
        """Buttons that submit the change form to the action view (formaction): no nested forms."""
        from stripe_integration.invoicing.actions import ACTION_LABELS, invoice_actions

        if obj is None or obj.pk is None:
            return "-"
        url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_stripe_action", args=[obj.pk])
        buttons = [(url, name, ACTION_LABELS[name]) for name in invoice_actions(obj)]
        if not buttons:
            return "-"
        return format_html_join(" ", '<button type="submit" formaction="{}" name="_stripe_action" value="{}" '
                                     'class="button">{}</button>', buttons)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("<int:pk>/stripe-action/", self.admin_site.admin_view(self.stripe_action_view),
                 name="%s_%s_stripe_action" % info),
        ] + super().get_urls()

    def stripe_action_view(self, request, pk):
        from stripe_integration.invoicing.push import InvoicingError
        from stripe_integration.invoicing.actions import invoice_action

        if request.method != "POST":
            raise Http404("Actions are posted from the invoice page.")
        invoice = self.get_queryset(request).filter(pk=pk).first()
        if invoice is None:
            raise Http404("No such invoice.")
        if not self.has_change_permission(request, invoice):
            raise PermissionDenied
        if request.POST.get("_stripe_action") == "mark_paid_out_of_band":  # asks for date, method, reference
            return stripe_mark_paid_out_of_band(self, request, self.get_queryset(request).filter(pk=pk))
        from stripe_integration.invoicing.confirm import CONFIRM_FIELD, needs_confirmation

        action = request.POST.get("_stripe_action", "")
        if needs_confirmation(action) and request.POST.get(CONFIRM_FIELD) != "yes":
            opts = self.model._meta
            return confirm_page(self, request, [invoice], action, form_action=request.path,
                                hidden=[("_stripe_action", action)],
                                back_url=reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]))
        try:
            self.message_user(request, invoice_action(invoice=invoice, action=request.POST.get("_stripe_action", ""),
                                                      user=request.user))
        except InvoicingError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        opts = self.model._meta
        if Invoice.objects.filter(pk=pk).exists():
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]))
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))

    def has_delete_permission(self, request, obj=None):
        # A draft that ever reached for Stripe is deleted with "Delete draft", which also
        # deletes Stripe's copy; the plain delete is for drafts Stripe never saw.
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or not obj.push_attempts)

    def delete_model(self, request, obj):
        invoice_release_billables(invoice=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for invoice in queryset:
            invoice_release_billables(invoice=invoice)
        super().delete_queryset(request, queryset)
