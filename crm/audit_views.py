"""The audit log page of the staff UI (issue 14): money actions, who took them, when and
from where, newest first, with filters. Owner and finance roles; read-only (entries are
written by the service functions that act, through crm.audit.audit_record)."""
from crm.audit import AuditEntry
from crm.filters import AuditFilter
from crm.selectors import _filtered
from crm.views import FilteredListView

PAGE_SIZE = 50


def audit_list(*, business, filters=None):
    qs = AuditEntry.objects.filter(business=business).select_related("user").order_by("-created_at", "-pk")
    return _filtered(AuditFilter, business=business, filters=filters, queryset=qs)


class AuditLogView(FilteredListView):
    template_name = "ui/audit_log.html"
    filterset_class = AuditFilter
    selector = staticmethod(audit_list)
    finance_required = True
    paginate_by = PAGE_SIZE
    title = "Audit log"

    def paginate_queryset(self, queryset, page_size):
        paginator = self.get_paginator(queryset, page_size, allow_empty_first_page=True)
        page = paginator.get_page(self.request.GET.get("page"))
        return paginator, page, page.object_list, page.has_other_pages()
