from django.apps import AppConfig


class FinanceConfig(AppConfig):
    name = "finance"
    verbose_name = "Finance"

    def ready(self):
        # finance fills in what crm (the layer below) shows but cannot compute itself:
        # money in its admin columns, and billables, invoices and payments on its pages.
        from crm.admin_base import money_formatter_install
        from crm.page_context import page_context_register

        from finance import pages
        from finance.money import format_money

        money_formatter_install(format_money)
        page_context_register("home", pages.home_context)
        page_context_register("invoice_detail", pages.invoice_history_context)
        page_context_register("contact_detail", pages.contact_detail_context)
        page_context_register("opportunity_detail", pages.opportunity_detail_context)
        page_context_register("ticket_detail", pages.ticket_detail_context)
