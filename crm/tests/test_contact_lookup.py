"""Contact choices that scale (issue 14): a search box and at most LIMIT matches instead of
a <select> of every contact; the htmx lookup answers with the current business's contacts
only; without JavaScript the search narrows the select when the form comes back."""
import re

import pytest

from crm.contact_lookup import LIMIT
from crm.tests.factories import IndividualFactory, UserFactory

pytestmark = pytest.mark.django_db

LOOKUP = "/contacts/lookup/"


def _options(html, select_name="bill_to"):
    select = re.search(rf'<select[^>]*name="{select_name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]*)"( selected)?( disabled)?>([^<]*)</option>', select)


def test_invoice_filter_lists_at_most_limit_contacts_with_a_search_box(client, staff_a, business_a):
    for n in range(LIMIT + 15):
        IndividualFactory(business=business_a, name=f"Client {n:03d}")
    client.force_login(staff_a)
    html = client.get("/invoices/").content.decode()
    options = _options(html)
    assert options[0] == ("", "", "", "Any contact")
    assert [o[3] for o in options[1:LIMIT + 1]] == [f"Client {n:03d}" for n in range(LIMIT)]
    assert options[-1][2] == " disabled" and "type to narrow" in options[-1][3] and len(options) == LIMIT + 2
    assert 'name="bill_to__search"' in html and 'hx-get="/contacts/lookup/?field=bill_to&amp;empty=Any+contact"' in html


def test_search_narrows_the_select_without_javascript_and_keeps_the_chosen_one(client, staff_a, business_a):
    chosen = IndividualFactory(business=business_a, name="Zoe Chosen")
    for name in ("Ada One", "Ada Two", "Bob"):
        IndividualFactory(business=business_a, name=name)
    client.force_login(staff_a)
    html = client.get("/invoices/", {"bill_to": chosen.pk, "bill_to__search": "ada"}).content.decode()
    assert [(o[0], o[1], o[3]) for o in _options(html)] == [
        ("", "", "Any contact"), (str(chosen.pk), " selected", "Zoe Chosen"),
        (str(_pk(business_a, "Ada One")), "", "Ada One"), (str(_pk(business_a, "Ada Two")), "", "Ada Two")]
    assert 'value="ada"' in html
    html = client.get("/invoices/", {"bill_to__search": "nobody"}).content.decode()
    assert [o[3] for o in _options(html)] == ["Any contact", "No contact matches “nobody”"]


def _pk(business, name):
    from crm.models import Contact
    return Contact.objects.get(business=business, name=name).pk


def test_lookup_answers_with_the_current_business_contacts_only(client, staff_a, business_a, business_b):
    mine = IndividualFactory(business=business_a, name="Ada Mine")
    theirs = IndividualFactory(business=business_b, name="Ada Theirs")
    client.force_login(staff_a)
    response = client.get(LOOKUP, {"field": "bill_to", "bill_to__search": "Ada", "empty": "Any contact"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and "Ada Mine" in html and "Ada Theirs" not in html
    assert html.startswith('<option value="">Any contact</option>')
    # another business's contact as the chosen one is not shown either
    html = client.get(LOOKUP, {"field": "bill_to", "bill_to": theirs.pk}).content.decode()
    assert "Ada Theirs" not in html and f'value="{mine.pk}"' in html and 'value=""' not in html
    # the chosen contact stays selected whatever the search
    html = client.get(LOOKUP, {"field": "bill_to", "bill_to": mine.pk, "bill_to__search": "zzz"}).content.decode()
    assert f'<option value="{mine.pk}" selected>Ada Mine</option>' in html


@pytest.mark.parametrize("params", [
    {"field": "bill_to", "bill_to": "abc"}, {"field": "bill_to", "bill_to": "9" * 30}, {"field": ""},
    {"field": "bill_to", "bill_to__search": "%' OR 1=1 --"}, {"field": "bill_to", "bill_to__search": "x" * 5000},
    {"empty": "<script>"},
])
def test_lookup_hostile_params_never_500(client, staff_a, business_a, params):
    IndividualFactory(business=business_a, name="Ada")
    client.force_login(staff_a)
    response = client.get(LOOKUP, params)
    assert response.status_code == 200 and "<script>" not in response.content.decode()


def test_lookup_needs_a_member(client, business_a):
    assert client.get(LOOKUP)["Location"].startswith("/login/")
    client.force_login(UserFactory())
    assert client.get(LOOKUP).status_code == 403


def test_billable_form_contact_search_without_javascript(client, staff_a, business_a, business_b):
    IndividualFactory(business=business_b, name="Zed Foreign")
    zed = IndividualFactory(business=business_a, name="Zed Local")
    for n in range(LIMIT + 5):
        IndividualFactory(business=business_a, name=f"Client {n:03d}")
    client.force_login(staff_a)
    data = {"bill_to": "", "bill_to__search": "zed", "description": "Work", "quantity": "1", "unit_price": "10",
            "currency": "GBP", "vat_rate": "0", "line_type": "charge"}
    html = client.post("/billables/new/", data).content.decode()
    # not saved (no contact chosen); the select now offers the matches of this business only
    assert [o[3] for o in _options(html)] == ["---------", "Zed Local"]
    data["bill_to"] = zed.pk
    assert client.post("/billables/new/", data).status_code == 302


@pytest.mark.parametrize("url", ["/opportunities/new/", "/tickets/new/"])
def test_opportunity_and_ticket_forms_search_contacts_too(client, staff_a, business_a, business_b, url):
    IndividualFactory(business=business_b, name="Zed Foreign")
    zed = IndividualFactory(business=business_a, name="Zed Local")
    for n in range(LIMIT + 5):
        IndividualFactory(business=business_a, name=f"Client {n:03d}")
    client.force_login(staff_a)
    html = client.get(url).content.decode()
    assert len(_options(html, "contact")) == LIMIT + 2 and 'name="contact__search"' in html
    # without JavaScript: the form comes back (no contact chosen) with the select narrowed
    html = client.post(url, {"contact__search": "zed", "title": "", "subject": ""}).content.decode()
    assert [o[3] for o in _options(html, "contact")] == ["---------", "Zed Local"]
    html = client.get(LOOKUP, {"field": "contact", "contact__search": "zed", "contact": zed.pk}).content.decode()
    assert f'<option value="{zed.pk}" selected>Zed Local</option>' in html and "Foreign" not in html
