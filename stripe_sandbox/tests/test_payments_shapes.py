"""Payment objects carry the fields Stripe's OpenAPI spec gives them (required ones
always, no others), and every key of Stripe's published example object
(fixtures3.json) that the spec requires, at every depth."""

import json
import os
from pathlib import Path

import pytest

from .spec_check import key_problems, missing_required

FIXTURES = Path(os.environ.get(
    "STRIPE_FIXTURES3", Path(__file__).resolve().parents[3] / "shared" / "stripe" / "fixtures3.json"
))


@pytest.fixture(scope="module")
def fixtures():
    if not FIXTURES.exists():
        pytest.skip(f"Stripe's example objects are not available at {FIXTURES} (set STRIPE_FIXTURES3)")
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.fixture
def objects(sandbox):
    """One of each payment object, as served over HTTP (raw JSON)."""
    client = sandbox.client()

    def raw(path):
        return client.raw_request("get", path).data

    cus = client.v1.customers.create(params={"email": "shape@example.test"})
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": cus.id})
    pi = client.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                                  "payment_method": pm.id, "confirm": True})
    refund = client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    charge = raw(f"/v1/charges/{pi.latest_charge}")
    si = client.v1.setup_intents.create(params={"customer": cus.id, "payment_method": "pm_card_visa",
                                                "confirm": True})
    session = client.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://app.test/ok",
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 1000, "product_data": {"name": "X"}},
                        "quantity": 1}],
    })
    return {
        "payment_intent": raw(f"/v1/payment_intents/{pi.id}"),
        "charge": charge,
        "refund": raw(f"/v1/refunds/{refund.id}"),
        "payment_method": raw(f"/v1/payment_methods/{pm.id}"),
        "setup_intent": raw(f"/v1/setup_intents/{si.id}"),
        "checkout.session": raw(f"/v1/checkout/sessions/{session.id}"),
        "balance_transaction": raw(f"/v1/balance_transactions/{charge['balance_transaction']}"),
    }


def _missing(example, ours, path=""):
    """Keys of Stripe's example that our object lacks, where both have a hash
    (metadata keys are the user's own)."""
    out = []
    if isinstance(example, dict) and isinstance(ours, dict):
        for key, value in example.items():
            if key == "metadata":
                continue
            if key not in ours:
                out.append(f"{path}{key}")
            else:
                out += _missing(value, ours[key], f"{path}{key}.")
    elif isinstance(example, list) and isinstance(ours, list) and example and ours:
        out += _missing(example[0], ours[0], f"{path}0.")
    return out


NAMES = ["payment_intent", "charge", "refund", "payment_method", "setup_intent", "checkout.session",
         "balance_transaction"]
PREFIXES = {"payment_intent": "pi_", "charge": "ch_", "refund": "re_", "payment_method": "pm_",
            "setup_intent": "seti_", "checkout.session": "cs_test_", "balance_transaction": "txn_"}


@pytest.mark.parametrize("name", NAMES)
def test_payments_shape_matches_spec_schema(objects, name):
    obj = objects[name]
    assert key_problems(obj, name) == []
    assert obj["object"] == name and obj["id"].startswith(PREFIXES[name])


@pytest.mark.parametrize("name", NAMES)
def test_payments_shape_has_every_key_of_stripe_example(objects, fixtures, name):
    example = fixtures[name]
    assert missing_required(example, objects[name], name) == []
    assert objects[name]["id"][:3] == example["id"][:3]


def test_payments_shape_charge_card_details_and_refunds(objects, fixtures):
    charge = objects["charge"]
    card = charge["payment_method_details"]["card"]
    assert {"brand", "last4", "exp_month", "exp_year", "funding", "country"} <= set(card)
    assert charge["refunds"]["object"] == "list" and charge["refunds"]["data"][0]["object"] == "refund"
    assert charge["refunds"]["url"] == fixtures["charge"]["refunds"]["url"].replace(
        fixtures["charge"]["id"], charge["id"])
    assert missing_required(fixtures["refund"], charge["refunds"]["data"][0], "refund") == []
    fee = objects["balance_transaction"]["fee_details"][0]
    assert fee == {"amount": 88, "application": None, "currency": "usd",
                   "description": "Stripe processing fees", "type": "stripe_fee"}
