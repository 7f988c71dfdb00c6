"""Linking an existing Stripe customer (cus_...) to a contact: from the staff UI's contact
page and from the admin; a missing, deleted or other account's id is a form error."""
import pytest
import requests
from django.urls import reverse

from crm.tests.factories import OrganizationFactory
from stripe_integration.customers import links as customers
from stripe_integration.models import CustomerLink
from stripe_integration.tests.sync_helpers import connect, stripe_call

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(client, finance_a, business_a, stripe_env, settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    return connect(client, finance_a, business_a)


@pytest.fixture
def acme(business_a):
    return OrganizationFactory(business=business_a, name="Acme Ltd", tax_id="GB123456789", country="GB")


def _create_customer(stripe_env, account, **params):
    return stripe_call(stripe_env, "POST", "/v1/customers", account=account, params={"name": "Existing", **params})


def _link_url(contact):
    return reverse("stripe_integration:customer_link", args=[contact.pk])


def _form_errors(response):
    return response.context["form"].errors.get("customer_id", [])


def test_customers_link_existing_customer_from_contact_page(client, conn, acme, stripe_env):
    existing = _create_customer(stripe_env, conn.stripe_user_id, email="old@acme.example",
                                tax_id_data={"0": {"type": "gb_vat", "value": "GB123456789"}})
    contact_page = client.get(reverse("ui:contact_detail", args=[acme.pk])).content.decode()
    assert "Link existing customer" in contact_page and _link_url(acme) in contact_page

    response = client.post(_link_url(acme), {"customer_id": f"  {existing['id']} "})

    assert response.status_code == 302 and response.url.startswith(reverse("ui:contact_detail", args=[acme.pk]))
    link = CustomerLink.objects.get(contact=acme)
    assert (link.stripe_customer_id, link.origin, link.connection) == (existing["id"], "linked", conn)
    assert link.synced_tax_id == "GB123456789"  # already on the customer: not added twice later
    customer = stripe_call(stripe_env, "GET", f"/v1/customers/{existing['id']}", account=conn.stripe_user_id)
    assert customer["metadata"]["crm_contact_id"] == str(acme.pk)
    assert customer["name"] == "Existing"  # linking does not rewrite the customer
    assert customers.customer_ensure(connection=conn, contact=acme) == existing["id"]
    assert existing["id"] in client.get(reverse("ui:contact_detail", args=[acme.pk])).content.decode()


def test_customers_link_missing_id_is_a_form_error(client, conn, acme):
    response = client.post(_link_url(acme), {"customer_id": "cus_doesnotexist123"})
    assert response.status_code == 200
    assert "Stripe has no customer cus_doesnotexist123" in " ".join(_form_errors(response))
    assert not CustomerLink.objects.exists()


def test_customers_link_malformed_id_is_a_form_error_without_a_call(client, conn, acme, stripe_env):
    stripe_env.mark()
    response = client.post(_link_url(acme), {"customer_id": "acct_123"})
    assert "Enter a Stripe customer id" in " ".join(_form_errors(response))
    assert stripe_env.requests() == []


def test_customers_link_deleted_customer_is_a_form_error(client, conn, acme, stripe_env):
    gone = _create_customer(stripe_env, conn.stripe_user_id)
    stripe_call(stripe_env, "DELETE", f"/v1/customers/{gone['id']}", account=conn.stripe_user_id)

    response = client.post(_link_url(acme), {"customer_id": gone["id"]})

    assert "was deleted in Stripe" in " ".join(_form_errors(response))
    assert not CustomerLink.objects.exists()


def test_customers_link_other_accounts_customer_is_a_form_error(client, conn, acme, stripe_env):
    other_account = requests.post(stripe_env.base_url + "/_sandbox/accounts", timeout=10, json={
        "secret_key": stripe_env.secret_key, "email": "other@example.com"}).json()["id"]
    theirs = _create_customer(stripe_env, other_account)

    response = client.post(_link_url(acme), {"customer_id": theirs["id"]})

    assert f"Stripe has no customer {theirs['id']} in this business's account" in " ".join(_form_errors(response))
    assert not CustomerLink.objects.exists()


def test_customers_link_customer_of_another_contact_is_refused(client, conn, acme, business_a, stripe_env):
    other = OrganizationFactory(business=business_a, name="Other Co")
    existing = _create_customer(stripe_env, conn.stripe_user_id)
    assert client.post(_link_url(other), {"customer_id": existing["id"]}).status_code == 302

    response = client.post(_link_url(acme), {"customer_id": existing["id"]})

    assert "already linked to Other Co" in " ".join(_form_errors(response))


def test_customers_link_replaces_previous_link(client, conn, acme, stripe_env):
    first = customers.customer_ensure(connection=conn, contact=acme)
    existing = _create_customer(stripe_env, conn.stripe_user_id)

    client.post(_link_url(acme), {"customer_id": existing["id"]})

    link = CustomerLink.objects.get(contact=acme)
    assert link.stripe_customer_id == existing["id"] != first


def test_customers_link_from_admin(client, conn, acme, stripe_env):
    existing = _create_customer(stripe_env, conn.stripe_user_id)
    add = reverse("admin:stripe_integration_customerlink_add")

    bad = client.post(add, {"contact": acme.pk, "stripe_customer_id": "cus_nope0000000"})
    assert bad.status_code == 200 and "Stripe has no customer cus_nope0000000" in bad.content.decode()
    good = client.post(add, {"contact": acme.pk, "stripe_customer_id": existing["id"]})
    assert good.status_code == 302
    assert CustomerLink.objects.get(contact=acme).stripe_customer_id == existing["id"]


def test_customers_link_admin_refuses_other_business_contact(client, conn, business_b, stripe_env):
    theirs = OrganizationFactory(business=business_b)
    existing = _create_customer(stripe_env, conn.stripe_user_id)
    response = client.post(reverse("admin:stripe_integration_customerlink_add"),
                           {"contact": theirs.pk, "stripe_customer_id": existing["id"]})
    assert response.status_code == 200 and not CustomerLink.objects.exists()


def test_customers_link_forbidden_to_staff_role_and_hidden_on_contact_page(client, staff_a, acme, conn):
    client.force_login(staff_a)
    assert client.post(_link_url(acme), {"customer_id": "cus_x1"}).status_code == 403
    assert client.get(_link_url(acme)).status_code == 403
    assert "Stripe customer" not in client.get(reverse("ui:contact_detail", args=[acme.pk])).content.decode()


def test_customers_link_other_business_contact_is_404(client, conn, business_b):
    theirs = OrganizationFactory(business=business_b)
    assert client.get(_link_url(theirs)).status_code == 404


def test_customers_admin_other_business_never_sees_links(client, conn, acme, finance_b):
    customers.customer_ensure(connection=conn, contact=acme)
    client.force_login(finance_b)
    response = client.get(reverse("admin:stripe_integration_customerlink_changelist"))
    assert response.status_code == 200 and response.context["cl"].result_count == 0
