"""Save a card, from the contact page's Stripe box: the finance user asks for a link
(POST, with the form's one-time nonce) and gets a page with the link to copy, open or
email; the client lands on `card_saved` (public) once Stripe's page is done."""
from __future__ import annotations

from urllib.parse import quote

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from crm import selectors as crm_selectors
from crm.models import Contact
from crm.tenancy import MemberRequiredMixin
from finance.modes import current_livemode

from .cards import card_setup_link_create, customer_collection_method_set
from .links import CustomerLinkError


class CardSetupLinkView(MemberRequiredMixin, View):
    finance_required = True
    http_method_names = ["post"]

    def post(self, request, pk):
        try:
            contact = crm_selectors.contact_get(business=self.business, pk=pk)
        except Contact.DoesNotExist:
            raise Http404("No such contact in this business.")
        try:
            link = card_setup_link_create(business=self.business, contact=contact, nonce=request.POST.get("nonce", ""),
                                          livemode=current_livemode(request, self.business))
        except CustomerLinkError as exc:
            return render(request, "stripe_integration/card_setup_link.html",
                          {"contact": contact, "error": exc.message}, status=400)
        email = contact.billing_email or ""
        subject = f"Save a card with {self.business.name}"
        body = (f"Hello,\n\nplease save the card we will charge for your invoices on this secure Stripe page:\n"
                f"{link.url}\n\nThank you,\n{self.business.name}")
        mailto = f"mailto:{quote(email)}?subject={quote(subject)}&body={quote(body)}"
        return render(request, "stripe_integration/card_setup_link.html",
                      {"contact": contact, "link": link, "mailto": mailto, "email": email})


def card_saved(request):
    """Where Stripe's Checkout page sends the client back (no login: it is the client)."""
    return render(request, "stripe_integration/card_saved.html", {"canceled": "canceled" in request.GET})


class CollectionMethodView(MemberRequiredMixin, View):
    """This contact's invoices: as the business does, sent, or charged to the saved card."""

    finance_required = True
    http_method_names = ["post"]

    def post(self, request, pk):
        try:
            contact = crm_selectors.contact_get(business=self.business, pk=pk)
        except Contact.DoesNotExist:
            raise Http404("No such contact in this business.")
        try:
            link = customer_collection_method_set(business=self.business, contact=contact,
                                                  method=request.POST.get("collection_method", ""),
                                                  livemode=current_livemode(request, self.business))
        except CustomerLinkError as exc:
            return render(request, "stripe_integration/card_setup_link.html",
                          {"contact": contact, "error": exc.message}, status=400)
        messages.success(request, f"{contact.name}: invoices are now "
                                  f"{(link.get_collection_method_display() or '').lower()}.")
        return redirect(reverse("ui:contact_detail", args=[contact.pk]) + "#stripe-customer")
