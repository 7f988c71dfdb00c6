"""`{% stripe_customer_section contact %}`: the contact page's Stripe customer box (finance
and owner roles only), so the CRM's contact view needs no knowledge of the integration."""
import uuid

from django import template

from finance.modes import current_livemode

from ..customers.links import customer_link_for
from ..connect.forms import CustomerLinkForm
from ..models import CustomerLink, IntegrationSettings
from ..rules.eligibility import contact_outside_rules

register = template.Library()


@register.inclusion_tag("stripe_integration/_contact_customer.html", takes_context=True)
def stripe_customer_section(context, contact):
    business = context.get("current_business")
    if not context.get("can_manage_finance") or business is None or contact.business_id != business.pk:
        return {"show": False}
    request = context.get("request")
    livemode = current_livemode(request, business) if request is not None else None
    connection, link = customer_link_for(business=business, contact=contact, livemode=livemode)  # the session's mode
    settings_row = IntegrationSettings.objects.filter(business=business).first()
    return {"show": True, "contact": contact, "connection": connection, "link": link, "form": CustomerLinkForm(),
            "outside_rules": contact_outside_rules(contact=contact),
            "auto_create": settings_row.auto_create_customers if settings_row else True,
            "charges_automatically": (link.collection_method if link and link.collection_method else
                                      settings_row.collection_method if settings_row else "") == "charge_automatically",
            "collection_choices": CustomerLink._meta.get_field("collection_method").choices,
            "nonce": uuid.uuid4().hex,
            "csrf_token": context.get("csrf_token")}
