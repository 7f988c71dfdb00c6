"""Choosing a contact among thousands (issue 14): a search box beside a short <select>.

A business may have tens of thousands of contacts; a <select> listing them all is a
page's weight and most of its rendering time. `ContactLookupWidget` draws a search box
(`<name>__search`) and a select holding only the chosen contact and the first
`LIMIT` contacts whose name contains the search text, from the field's own queryset (the
business's contacts, so another business's never shows and a crafted id is the field's
usual "not one of the choices" error). With htmx, typing asks `ContactLookupView` for the
select's options again (the current business's contacts only); without JavaScript,
submitting the form with a search text re-renders the select narrowed to the matches.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.forms.utils import flatatt
from django.http import HttpResponse
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views import View

from crm.models import Contact
from crm.tenancy import MemberRequiredMixin

LIMIT = 20
SEARCH_SUFFIX = "__search"
MAX_SEARCH = 100


def contact_options(*, queryset, selected, text: str, empty_label: str | None, limit: int = LIMIT) -> str:
    """The <option>s: the empty choice, the chosen contact (kept whatever the search) and
    up to `limit` matches by name; two small queries whatever the number of contacts."""
    text = (text or "").strip()[:MAX_SEARCH]
    queryset = queryset.only("id", "name").order_by("name", "pk")
    chosen = None
    if selected not in (None, ""):
        try:
            chosen = queryset.filter(pk=int(str(selected))).first()
        except (TypeError, ValueError, OverflowError):
            chosen = None
    matches = queryset.filter(name__icontains=text) if text else queryset
    found = list(matches[: limit + 1])
    others = [c for c in found[:limit] if chosen is None or c.pk != chosen.pk]
    options = []
    if empty_label is not None:
        options.append(f'<option value="">{escape(empty_label)}</option>')
    if chosen is not None:
        options.append(f'<option value="{chosen.pk}" selected>{escape(chosen.name)}</option>')
    options += [f'<option value="{c.pk}">{escape(c.name)}</option>' for c in others]
    if len(found) > limit:
        options.append(f'<option value="" disabled>More contacts{" match" if text else ""}: type to narrow the list</option>')
    elif text and not found:
        options.append(f'<option value="" disabled>No contact matches “{escape(text)}”</option>')
    return "".join(options)


class ContactLookupWidget(forms.Select):
    """For a ModelChoiceField (or django-filter ModelChoiceFilter) of contacts whose
    queryset is the business's: never iterates the whole queryset."""

    search_text = ""

    def value_from_datadict(self, data, files, name):
        self.search_text = (data.get(f"{name}{SEARCH_SUFFIX}") or "").strip()[:MAX_SEARCH]
        return super().value_from_datadict(data, files, name)

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        select_id = final.setdefault("id", f"id_{name}")
        values = self.format_value(value)
        field = self.choices.field
        empty_label = field.empty_label
        options = contact_options(queryset=self.choices.queryset, selected=values[0] if values else None,
                                  text=self.search_text, empty_label=empty_label)
        query = {"field": name}
        if empty_label is not None:
            query["empty"] = str(empty_label)
        search = {
            "type": "search", "name": f"{name}{SEARCH_SUFFIX}", "value": self.search_text,
            "placeholder": "Search contacts", "aria-label": "Search contacts", "autocomplete": "off",
            "maxlength": MAX_SEARCH, "data-contact-search": name,
            # htmx: ask for the matching options as the user types, keeping the chosen one.
            "hx-get": f"{reverse('ui:contact_lookup')}?{urlencode(query)}",
            "hx-trigger": "input changed delay:300ms, search", "hx-target": f"#{select_id}",
            "hx-swap": "innerHTML", "hx-include": f"#{select_id}", "hx-sync": "this:replace",
        }
        return mark_safe(f'<span class="contact-lookup"><input{flatatt(search)}>'
                         f'<select{flatatt(final)}>{options}</select></span>')


class ContactLookupView(MemberRequiredMixin, View):
    """GET ?field=<name>&<name>__search=<text>&<name>=<chosen id>[&empty=<label>]: the
    select's options for the current business's contacts (an htmx fragment)."""

    def get(self, request):
        name = request.GET.get("field", "")
        empty = request.GET.get("empty")
        html = contact_options(queryset=Contact.objects.for_business(self.business),
                               selected=request.GET.get(name) if name else None,
                               text=request.GET.get(f"{name}{SEARCH_SUFFIX}", "") if name else "",
                               empty_label=empty[:100] if empty is not None else None)
        return HttpResponse(html)
