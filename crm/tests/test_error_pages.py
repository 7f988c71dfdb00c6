"""403 and 404 pages in the app's layout (templates/403.html, 404.html): the reason the
view gave, and a way back. Django shows them only with DEBUG off, as in production."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def production_errors(settings):
    settings.DEBUG = False


def test_error_page_403_gives_the_reason_in_the_layout(client, staff_a, business_a):
    client.force_login(staff_a)
    resp = client.get("/integrations/stripe/")
    body = resp.content.decode()
    assert resp.status_code == 403 and 'data-error-page="403"' in body
    assert "This page is for the finance and owner roles." in body
    assert 'class="top"' in body and business_a.name in body  # the app's header, not Django's bare page
    assert 'href="/"' in body and "Back to the home page" in body


def test_error_page_404_for_another_business_record_says_why(client, finance_a):
    client.force_login(finance_a)
    resp = client.get("/invoices/999999/")
    body = resp.content.decode()
    assert resp.status_code == 404 and 'data-error-page="404"' in body
    assert "No such invoice in this business." in body and "Back to the home page" in body


def test_error_page_404_for_an_unknown_address(client, finance_a):
    client.force_login(finance_a)
    body = client.get("/no/such/page/").content.decode()
    assert "There is no page at this address." in body and "Resolver404" not in body
    assert "/no/such/page/" in body


def test_error_page_404_anonymous_offers_login(client):
    resp = client.get("/no/such/page/")
    body = resp.content.decode()
    assert resp.status_code == 404 and 'href="/login/"' in body and "Log out" not in body
