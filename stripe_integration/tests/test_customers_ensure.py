"""Each bill-to contact has at most one Stripe customer per connection: automatic creation,
reuse of one made earlier, the setting that turns creation off, contact edits."""
import pytest
from django.urls import reverse

from crm import services as crm_services
from crm.tests.factories import IndividualFactory, OrganizationFactory
from stripe_integration.customers import links as customers
from stripe_integration.models import CustomerLink, CustomerState, IntegrationSettings
from stripe_integration.tests.sync_helpers import connect, stripe_call, writes

pytestmark = pytest.mark.django_db


@pytest.fixture
def conn(client, finance_a, business_a, stripe_env, settings):
    settings.STRIPE_RETRY_BASE_DELAY = 0.01
    connection = connect(client, finance_a, business_a)
    stripe_env.mark()
    return connection


@pytest.fixture
def acme(business_a):
    return OrganizationFactory(
        business=business_a, name="Acme Ltd", billing_email="billing@acme.example", tax_id="GB123456789",
        address_line1="1 High Street", address_line2="Floor 2", city="London", postal_code="EC1A 1BB", country="GB",
    )


def _customer(stripe_env, conn, customer_id):
    return stripe_call(stripe_env, "GET", f"/v1/customers/{customer_id}", account=conn.stripe_user_id,
                       params={"expand[]": "tax_ids"})


def test_customers_ensure_creates_customer_with_contact_details(conn, acme, stripe_env):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)

    customer = _customer(stripe_env, conn, customer_id)
    assert customer["name"] == "Acme Ltd" and customer["email"] == "billing@acme.example"
    assert customer["address"] == {"line1": "1 High Street", "line2": "Floor 2", "city": "London",
                                   "postal_code": "EC1A 1BB", "state": None, "country": "GB"}
    assert [(t["type"], t["value"]) for t in customer["tax_ids"]["data"]] == [("gb_vat", "GB123456789")]
    assert customer["metadata"]["crm_contact_id"] == str(acme.pk)
    assert customer["metadata"]["crm_business_id"] == str(acme.business_id)
    link = CustomerLink.objects.get(contact=acme)
    assert (link.stripe_customer_id, link.origin, link.state) == (customer_id, "created", CustomerState.SYNCED)
    assert link.synced_tax_id == "GB123456789" and link.stripe_tax_id.startswith("txi_")
    assert all(r["account"] == conn.stripe_user_id for r in stripe_env.requests())

    stripe_env.mark()
    assert customers.customer_ensure(connection=conn, contact=acme.contact_ptr) == customer_id
    assert stripe_env.requests() == []


def test_customers_ensure_individual_without_tax_id(conn, business_a, stripe_env):
    person = IndividualFactory(business=business_a, name="Ada Lovelace", email="ada@example.com", country="GB")

    customer = _customer(stripe_env, conn, customers.customer_ensure(connection=conn, contact=person))

    assert customer["name"] == "Ada Lovelace" and customer["email"] == "ada@example.com"
    assert customer["tax_ids"]["data"] == [] and customer["metadata"]["crm_contact_kind"] == "individual"


def test_customers_ensure_reuses_customer_found_by_email_and_metadata(conn, acme, stripe_env):
    # One the app made before (an answer lost, or an earlier connection of this account),
    # and a stranger with the same e-mail.
    stranger = stripe_call(stripe_env, "POST", "/v1/customers", account=conn.stripe_user_id,
                           params={"email": "billing@acme.example", "name": "Someone else"})
    earlier = stripe_call(stripe_env, "POST", "/v1/customers", account=conn.stripe_user_id, params={
        "email": "billing@acme.example", "name": "Acme Ltd",
        "metadata": {"crm_contact_id": str(acme.pk), "crm_business_id": str(acme.business_id)}})
    stripe_env.mark()

    customer_id = customers.customer_ensure(connection=conn, contact=acme)

    assert customer_id == earlier["id"] != stranger["id"]
    assert writes(stripe_env) == []
    assert CustomerLink.objects.get(contact=acme).origin == "found"


def test_customers_ensure_lost_answer_makes_one_customer(conn, acme, stripe_env, settings):
    settings.STRIPE_MAX_RETRIES = 0
    stripe_env.fault(r"^POST /v1/customers$", "drop", count=1)
    with pytest.raises(customers.RetryableCustomerError):
        customers.customer_ensure(connection=conn, contact=acme)
    assert not CustomerLink.objects.exists()

    customer_id = customers.customer_ensure(connection=conn, contact=acme)

    listed = stripe_call(stripe_env, "GET", "/v1/customers", account=conn.stripe_user_id, params={"limit": 100})
    assert [c["id"] for c in listed["data"]] == [customer_id]


def test_customers_ensure_with_automatic_creation_off_fails_clearly_and_changes_nothing(
        client, conn, acme, stripe_env, business_a):
    response = client.post(reverse("stripe_integration:integration_settings"), {})  # checkbox unticked
    assert response.status_code == 302
    assert IntegrationSettings.objects.get(business=business_a).auto_create_customers is False
    stripe_env.mark()

    with pytest.raises(customers.CustomerLinkError) as exc:
        customers.customer_ensure(connection=conn, contact=acme)

    assert "this contact has no Stripe customer: link one or turn on automatic creation" in exc.value.message
    assert stripe_env.requests() == [] and not CustomerLink.objects.exists()


def test_customers_settings_form_is_on_the_settings_page_and_on_by_default(client, conn):
    page = client.get(reverse("stripe_integration:settings")).content.decode()
    assert "Create customers in Stripe automatically" in page
    assert 'name="auto_create_customers"' in page and "checked" in page


def test_customers_contact_edit_updates_stripe_customer(conn, acme, stripe_env, django_capture_on_commit_callbacks):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    stripe_env.mark()

    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_update(contact=acme, data={
            "name": "Acme Group Ltd", "billing_email": "ap@acme.example", "city": "Manchester", "postal_code": "M1 1AA"})

    customer = _customer(stripe_env, conn, customer_id)
    assert customer["name"] == "Acme Group Ltd" and customer["email"] == "ap@acme.example"
    assert customer["address"]["city"] == "Manchester" and customer["address"]["postal_code"] == "M1 1AA"
    assert customer["address"]["line1"] == "1 High Street"
    link = CustomerLink.objects.get(contact=acme)
    assert link.state == CustomerState.SYNCED
    assert [r["path"] for r in writes(stripe_env)] == [f"/v1/customers/{customer_id}"]

    # A field the customer does not carry: no call at all.
    stripe_env.mark()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        crm_services.contact_update(contact=acme, data={"phone": "+44 20 7946 0000"})
    assert callbacks == [] and stripe_env.requests() == []


def test_customers_contact_tax_id_edit_replaces_stripe_tax_id(conn, acme, stripe_env, django_capture_on_commit_callbacks):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_update(contact=acme, data={"tax_id": "GB987654321"})
    customer = _customer(stripe_env, conn, customer_id)
    assert [t["value"] for t in customer["tax_ids"]["data"]] == ["GB987654321"]
    assert CustomerLink.objects.get(contact=acme).state == CustomerState.SYNCED


def test_customers_push_failure_is_recorded_and_admin_retry_works(client, conn, acme, stripe_env, settings,
                                                                   django_capture_on_commit_callbacks):
    settings.STRIPE_MAX_RETRIES = 0
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    stripe_env.fault(rf"^POST /v1/customers/{customer_id}$", "500")
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_update(contact=acme, data={"name": "Acme Renamed"})
    link = CustomerLink.objects.get(contact=acme)
    assert link.state == CustomerState.ERROR and "try again" in link.last_error
    acme.refresh_from_db()
    assert acme.name == "Acme Renamed"  # the edit is kept

    stripe_env.clear_faults()
    changelist = reverse("admin:stripe_integration_customerlink_changelist")
    assert "Acme Renamed" in client.get(changelist).content.decode()
    client.post(changelist, {"action": "push_contact_details", "_selected_action": [link.pk]})
    link.refresh_from_db()
    assert link.state == CustomerState.SYNCED
    assert _customer(stripe_env, conn, customer_id)["name"] == "Acme Renamed"


def test_customers_deleted_in_stripe_is_recreated_or_refused(conn, acme, stripe_env, business_a):
    first = customers.customer_ensure(connection=conn, contact=acme)
    stripe_call(stripe_env, "DELETE", f"/v1/customers/{first}", account=conn.stripe_user_id)
    link = customers.customer_changed_in_stripe(connection=conn, customer_id=first, deleted=True)
    assert link.state == CustomerState.DELETED

    IntegrationSettings.objects.filter(business=business_a).update(auto_create_customers=False)
    with pytest.raises(customers.CustomerLinkError, match="was deleted in Stripe"):
        customers.customer_ensure(connection=conn, contact=acme)

    IntegrationSettings.objects.filter(business=business_a).update(auto_create_customers=True)
    second = customers.customer_ensure(connection=conn, contact=acme)
    assert second != first and CustomerLink.objects.get(contact=acme).stripe_customer_id == second
    assert _customer(stripe_env, conn, second)["name"] == "Acme Ltd"


def test_customers_changed_in_stripe_as_the_webhook_calls_it(conn, acme, business_a):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    assert customers.customer_changed_in_stripe(business=business_a, customer={"id": customer_id},
                                                deleted=False).state == CustomerState.SYNCED
    assert customers.customer_changed_in_stripe(business=business_a, customer={"id": "cus_other"}, deleted=True) is None


def test_customers_tax_id_type_follows_country():
    assert customers.tax_id_type(country="DE", value="DE123456789") == "eu_vat"
    assert customers.tax_id_type(country="GB", value="GB123456789") == "gb_vat"
    assert customers.tax_id_type(country="", value="FR12345678901") == "eu_vat"
    assert customers.tax_id_type(country="ZZ", value="123") is None


def test_customers_unknown_tax_id_type_is_noted_not_sent(conn, business_a, stripe_env):
    org = OrganizationFactory(business=business_a, name="Far Away", country="AQ", tax_id="P051234567X")

    customer_id = customers.customer_ensure(connection=conn, contact=org)

    assert _customer(stripe_env, conn, customer_id)["tax_ids"]["data"] == []
    link = CustomerLink.objects.get(contact=org)
    assert "P051234567X not sent" in link.note
    assert _customer(stripe_env, conn, customer_id)["metadata"]["crm_tax_id"] == "P051234567X"
