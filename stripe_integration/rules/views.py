"""The rules page of the staff UI (finance and owner): the include and exclude lists, the
filter, the external account code, and "Test this filter": which contacts pass and why
the others do not, computed from the form as posted, without saving anything."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View

from crm.models import Contact
from crm.tenancy import MemberRequiredMixin

from ..models import CustomFieldMapping, StripeRules
from .eligibility import RulesEvaluator, stripe_rules_update
from .forms import StripeRulesForm

PREVIEW_LIMIT = 500  # contacts listed by the preview (the counts cover them all)


def rules_preview(*, business, evaluator: RulesEvaluator, limit: int = PREVIEW_LIMIT) -> dict:
    """Each contact (up to `limit`, by name) with "" (passes) or the reason it does not."""
    contacts = (Contact.objects.for_business(business).order_by("name", "pk")
                .select_related("as_individual__organization", "as_organization"))
    rows, passed, total = [], 0, 0
    for contact in contacts.iterator(chunk_size=200):
        reason = evaluator.reason(contact)
        total += 1
        passed += not reason
        if len(rows) < limit:
            rows.append((contact, reason))
    return {"rows": rows, "passed": passed, "failed": total - passed, "total": total, "truncated": total > limit}


class StripeRulesView(MemberRequiredMixin, View):
    finance_required = True

    def _render(self, request, form, preview=None, status=200):
        mappings = CustomFieldMapping.objects.for_business(self.business).select_related("field")
        return render(request, "stripe_integration/rules.html", {
            "form": form, "preview": preview, "mappings": mappings, "title": "Stripe rules and custom fields",
        }, status=status)

    def get(self, request):
        return self._render(request, StripeRulesForm(instance=StripeRules.for_business(self.business),
                                                     business=self.business))

    def post(self, request):
        form = StripeRulesForm(request.POST, instance=StripeRules.for_business(self.business), business=self.business)
        if not form.is_valid():
            return self._render(request, form, status=400)
        data = form.cleaned_data
        if "preview" in request.POST:
            evaluator = RulesEvaluator(
                business_id=self.business.pk, include=frozenset(c.pk for c in data["include_contacts"]),
                exclude=frozenset(c.pk for c in data["exclude_contacts"]), compiled=form.compiled)
            return self._render(request, form, preview=rules_preview(business=self.business, evaluator=evaluator))
        stripe_rules_update(business=self.business, data=data)
        messages.success(request, "Stripe rules saved.")
        return redirect("stripe_integration:rules")
