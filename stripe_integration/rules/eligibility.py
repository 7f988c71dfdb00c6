"""Whether a contact may go to Stripe, and why not (the one rule; the customer sync, the
invoice push, the unbilled run and the pages all ask `RulesEvaluator.reason`).

A contact goes to Stripe when it is not on the exclude list, AND the include list is empty
or holds it, AND the filter is blank or true for it. The exclude list wins over both; the
include list narrows (it does not bypass the filter). A filter that cannot be evaluated
for a contact leaves that contact out, with the error as the reason (logged).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from crm.custom_fields import custom_field_definitions
from crm.models import Business, Contact, CustomFieldTarget

from ..models import StripeRules
from .expressions import CompiledFilter, FilterError, contact_activation, filter_compile

log = logging.getLogger(__name__)


@dataclass
class RulesEvaluator:
    business_id: int
    include: frozenset[int] = frozenset()
    exclude: frozenset[int] = frozenset()
    compiled: CompiledFilter | None = None
    broken: str = ""  # a stored filter that no longer compiles (e.g. a custom field was deleted)
    _cache: dict[int, str] = field(default_factory=dict)

    @property
    def has_rules(self) -> bool:
        return bool(self.include or self.exclude or self.compiled or self.broken)

    def reason(self, contact: Contact) -> str:
        """"" when the contact may go to Stripe; else why not, fit to show."""
        if contact.pk in self._cache:
            return self._cache[contact.pk]
        self._cache[contact.pk] = why = self._reason(contact)
        return why

    def _reason(self, contact: Contact) -> str:
        if contact.business_id != self.business_id:
            return "the contact belongs to another business"
        if contact.pk in self.exclude:
            return "on the exclude list"
        if self.include and contact.pk not in self.include:
            return "not on the include list"
        if self.broken:
            return f"the filter cannot be used: {self.broken}"
        if self.compiled is None:
            return ""
        try:
            passed = self.compiled.evaluate(contact_activation(contact))
        except FilterError as exc:
            log.warning("Stripe rules filter of business %s failed for contact %s: %s", self.business_id, contact.pk,
                        exc.message)
            return f"the filter could not be evaluated: {exc.message}"
        return "" if passed else f"the filter is false ({self.compiled.expression})"


def rules_evaluator(*, business: Business | int) -> RulesEvaluator:
    """The business's rules, loaded once (a few queries) for any number of contacts."""
    business_id = business if isinstance(business, int) else business.pk
    rules = StripeRules.objects.filter(business_id=business_id).first()
    if rules is None:
        return RulesEvaluator(business_id=business_id)
    evaluator = RulesEvaluator(
        business_id=business_id,
        include=frozenset(rules.include_contacts.values_list("pk", flat=True)),
        exclude=frozenset(rules.exclude_contacts.values_list("pk", flat=True)),
    )
    try:
        evaluator.compiled = filter_compile(
            rules.filter_expression,
            definitions=custom_field_definitions(business=business_id, applies_to=CustomFieldTarget.CONTACT))
    except FilterError as exc:
        evaluator.broken = exc.message
    return evaluator


def contact_outside_rules(*, contact: Contact) -> str:
    """Why the contact stays out of Stripe ("" when it may go)."""
    return rules_evaluator(business=contact.business_id).reason(contact)


def outside_message(contact: Contact, reason: str) -> str:
    return f"{contact.name} is outside the Stripe rules ({reason}): nothing is sent to Stripe for this contact."


def stripe_rules_update(*, business: Business, data: dict) -> StripeRules:
    """Save the rules page (a validated StripeRulesForm's cleaned data)."""
    from django.db import transaction

    with transaction.atomic():
        rules = StripeRules.for_business(business)
        rules.filter_expression = data.get("filter_expression", "")
        rules.account_code_field = data.get("account_code_field")
        rules.full_clean()
        rules.save()
        rules.include_contacts.set(data.get("include_contacts") or [])
        rules.exclude_contacts.set(data.get("exclude_contacts") or [])
    return rules
