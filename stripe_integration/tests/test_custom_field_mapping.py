"""Custom fields <-> Stripe (per business): metadata keys and native customer fields,
CRM -> Stripe at customer create and push (metadata, email, description, tax_exempt) and
at invoice push (invoice metadata); Stripe -> CRM from customers (delinquent, tax location
country, discount, default payment method, metadata) and from invoices and payments.
Through the sandbox over real HTTP."""
import copy
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from crm import services as crm_services
from crm.models import CustomFieldDefinition, CustomFieldTarget, CustomFieldType
from crm.tests.factories import OrganizationFactory
from finance.models import Invoice
from finance.tests.factories import PaymentFactory
from stripe_integration.customers import links as customers
from stripe_integration.invoicing import push as invoicing
from stripe_integration.models import CustomFieldMapping, StripeField, StripeRules
from stripe_integration.rules.mapping import payment_apply_from_stripe
from stripe_integration.tests import invoicing_helpers as h
from stripe_integration.tests.sync_helpers import stripe_call

pytestmark = pytest.mark.django_db
D = Decimal


def define(business, key, field_type=CustomFieldType.TEXT, applies_to=CustomFieldTarget.CONTACT):
    return CustomFieldDefinition.objects.create(business=business, key=key, label=key, field_type=field_type,
                                                applies_to=applies_to)


def mapping(business, definition, stripe_field=StripeField.METADATA, metadata_key=""):
    m = CustomFieldMapping(business=business, field=definition, stripe_field=stripe_field, metadata_key=metadata_key)
    m.full_clean()
    m.save()
    return m


@pytest.fixture
def mapped(business_a):
    mapping(business_a, define(business_a, "po"), metadata_key="po_number")
    mapping(business_a, define(business_a, "ap_email", CustomFieldType.EMAIL), StripeField.EMAIL)
    mapping(business_a, define(business_a, "notes"), StripeField.DESCRIPTION)
    mapping(business_a, define(business_a, "exempt", CustomFieldType.BOOL), StripeField.TAX_EXEMPT)
    mapping(business_a, define(business_a, "late", CustomFieldType.BOOL), StripeField.DELINQUENT)
    mapping(business_a, define(business_a, "tax_country"), StripeField.TAX_LOCATION_COUNTRY)
    mapping(business_a, define(business_a, "coupon"), StripeField.DISCOUNT)
    mapping(business_a, define(business_a, "card"), StripeField.DEFAULT_PAYMENT_METHOD)


@pytest.fixture
def conn(client, finance_a, business_a, stripe_env):
    connection = h.connect(client, finance_a, business_a)
    stripe_env.mark()
    return connection


@pytest.fixture
def acme(business_a, mapped):
    return OrganizationFactory(business=business_a, name="Acme", billing_email="billing@acme.example", country="GB",
                               custom_fields={"po": "PO-7", "ap_email": "ap@acme.example", "notes": "Key account",
                                              "exempt": True})


def _customer(stripe_env, conn, customer_id):
    return stripe_call(stripe_env, "GET", f"/v1/customers/{customer_id}", account=conn.stripe_user_id)


def test_mapping_contact_to_stripe_metadata_and_native_fields(conn, acme, stripe_env):
    customer = _customer(stripe_env, conn, customers.customer_ensure(connection=conn, contact=acme))
    assert customer["metadata"]["po_number"] == "PO-7" and customer["metadata"]["crm_contact_id"] == str(acme.pk)
    assert customer["email"] == "ap@acme.example"  # the mapped e-mail wins over the billing e-mail
    assert customer["description"] == "Key account" and customer["tax_exempt"] == "exempt"


def test_mapping_contact_edit_pushes_and_unsets(conn, acme, stripe_env, django_capture_on_commit_callbacks):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    with django_capture_on_commit_callbacks(execute=True):
        crm_services.contact_update(contact=acme, data={"custom_fields": {"notes": "Churn risk", "exempt": False,
                                                                          "ap_email": "ap@acme.example"}})
    customer = _customer(stripe_env, conn, customer_id)
    assert customer["description"] == "Churn risk" and customer["tax_exempt"] == "none"
    assert "po_number" not in customer["metadata"]  # removed in the CRM: unset in Stripe
    acme.refresh_from_db()  # what only Stripe sets came back with the push's answer
    assert acme.custom_fields["late"] is False and "tax_country" not in acme.custom_fields


def test_mapping_stripe_to_contact_from_customer_updated(conn, acme, business_a, stripe_env,
                                                         django_capture_on_commit_callbacks):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    stripe_env.mark()
    obj = copy.deepcopy(_customer(stripe_env, conn, customer_id))
    # What Stripe sends after it changed what only it can change: delinquent, the tax
    # location (`tax`, expanded), a discount, a default payment method; and a metadata edit.
    obj.update(delinquent=True, tax={"automatic_tax": "supported", "ip_address": None,
                                      "location": {"country": "DE", "source": "billing_address", "state": None}},
               discount={"id": "di_1", "object": "discount", "source": {"type": "coupon", "coupon": "co_SPRING"}},
               invoice_settings={"custom_fields": None, "default_payment_method": "pm_123", "footer": None,
                                 "rendering_options": None})
    obj["metadata"]["po_number"] = "PO-8"
    with django_capture_on_commit_callbacks(execute=True):
        customers.customer_changed_in_stripe(business=business_a, customer=obj, deleted=False)
    acme.refresh_from_db()
    assert acme.custom_fields == {"po": "PO-8", "ap_email": "ap@acme.example", "notes": "Key account",
                                  "exempt": True, "late": True, "tax_country": "DE", "coupon": "co_SPRING",
                                  "card": "pm_123"}
    assert stripe_env.requests(method="POST") == []  # taken from Stripe: not echoed back


def test_mapping_value_of_the_wrong_type_from_stripe_is_skipped(conn, acme, business_a, stripe_env):
    customer_id = customers.customer_ensure(connection=conn, contact=acme)
    obj = _customer(stripe_env, conn, customer_id)
    obj["email"] = "not an e-mail"
    customers.customer_changed_in_stripe(business=business_a, customer=obj, deleted=False)
    acme.refresh_from_db()
    assert acme.custom_fields["ap_email"] == "ap@acme.example"


def test_mapping_invoice_custom_fields_go_to_invoice_metadata(conn, business_a, stripe_env):
    mapping(business_a, define(business_a, "cost_center", applies_to=CustomFieldTarget.INVOICE),
            metadata_key="cost_center")
    contact = h.contact(business_a)
    billable = h.billable(business_a, contact)
    (invoice,) = invoicing.invoices_generate(business=business_a, billable_ids=[billable.pk], push=False).invoices
    Invoice.objects.filter(pk=invoice.pk).update(custom_fields={"cost_center": "CC-42"})
    assert invoicing.invoice_push(invoice_id=invoice.pk).outcome == "pushed"
    invoice.refresh_from_db()
    raw = h.stripe_invoice_raw(conn, invoice.stripe_invoice_id)
    assert raw["metadata"]["cost_center"] == "CC-42" and raw["metadata"]["crm_invoice_id"] == str(invoice.pk)


def test_mapping_payment_metadata_to_payment_custom_fields(business_a):
    mapping(business_a, define(business_a, "channel", applies_to=CustomFieldTarget.PAYMENT), metadata_key="channel")
    mapping(business_a, define(business_a, "batch", CustomFieldType.NUMBER, CustomFieldTarget.PAYMENT),
            metadata_key="batch")
    payment = PaymentFactory(invoice__business=business_a)
    assert payment_apply_from_stripe(payment=payment, metadata={"channel": "web", "batch": "x", "other": "1"}) == \
        {"channel": "web"}
    payment.refresh_from_db()
    assert payment.custom_fields == {"channel": "web"}


def test_mapping_account_code_replaces_our_id_and_recovery_still_matches(conn, acme, business_a, stripe_env):
    code = define(business_a, "erp_code")
    rules = StripeRules.for_business(business_a)
    rules.account_code_field = code
    rules.save()
    crm_services.contact_custom_fields_set(contact=acme, values={"erp_code": "ACC-001"}, announce=False)
    # A customer made earlier under the account code (an answer lost, another connection).
    earlier = stripe_call(stripe_env, "POST", "/v1/customers", account=conn.stripe_user_id, params={
        "email": "ap@acme.example", "name": "Acme",
        "metadata": {"crm_account_code": "ACC-001", "crm_business_id": str(business_a.pk)}})
    stripe_env.mark()
    assert customers.customer_ensure(connection=conn, contact=acme) == earlier["id"]
    assert stripe_env.requests(method="POST", path="/v1/customers") == []
    other = OrganizationFactory(business=business_a, name="Beta", billing_email="beta@example.com",
                                custom_fields={"erp_code": "ACC-002"})
    customer = _customer(stripe_env, conn, customers.customer_ensure(connection=conn, contact=other))
    assert customer["metadata"]["crm_account_code"] == "ACC-002" and "crm_contact_id" not in customer["metadata"]


def test_mapping_validation(business_a, business_b):
    po = define(business_a, "po")
    with pytest.raises(ValidationError, match="integration's own"):
        mapping(business_a, po, metadata_key="crm_contact_id")
    with pytest.raises(ValidationError, match="Name the metadata key"):
        mapping(business_a, po)
    inv = define(business_a, "ref", applies_to=CustomFieldTarget.INVOICE)
    with pytest.raises(ValidationError, match="metadata keys only"):
        mapping(business_a, inv, StripeField.EMAIL)
    with pytest.raises(ValidationError, match="yes/no"):
        mapping(business_a, po, StripeField.DELINQUENT)
    with pytest.raises(ValidationError, match="another business"):
        mapping(business_b, po, metadata_key="po")


def test_mapping_admin_is_scoped_and_says_the_direction(client, finance_a, business_a, business_b):
    mapping(business_a, define(business_a, "mine", CustomFieldType.BOOL), StripeField.DELINQUENT)
    theirs = define(business_b, "theirs")
    mapping(business_b, theirs, metadata_key="theirs")
    client.force_login(finance_a)
    listing = client.get(reverse("admin:stripe_integration_customfieldmapping_changelist")).content.decode()
    assert "mine" in listing and "Stripe -&gt; CRM only" in listing and "theirs" not in listing
    add = client.post(reverse("admin:stripe_integration_customfieldmapping_add"),
                      {"field": theirs.pk, "stripe_field": "metadata", "metadata_key": "x"})
    assert add.status_code == 200 and "valid choice" in add.content.decode()
    rules_page = client.get(reverse("stripe_integration:rules")).content.decode()
    assert "Stripe → CRM only" in rules_page and "theirs" not in rules_page
