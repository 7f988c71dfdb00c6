"""Answers `IntegrationDisabled` (a person's Stripe action while the business's integration
is disabled or paused) on any page: the message with a link to re-enable it, and back to
the page the action came from (same site only; else the runs page). Nothing was done."""
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from .disable import IntegrationDisabled


class IntegrationDisabledMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, IntegrationDisabled):
            return None
        runs = reverse("stripe_integration:run_list")
        messages.error(request, format_html('{} <a href="{}">Re-enable it on the Stripe runs page</a>.',
                                            exception.message, runs))
        back = request.META.get("HTTP_REFERER", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            back = runs
        return redirect(back)
