"""Conformance flow: every API endpoint the sandbox serves, answers and errors,
checked against Stripe's OpenAPI spec (../shared/stripe/spec3.json).

Every answer goes through stripe-python over HTTP and is validated by the
recording HTTP client of conftest.py (`spec_conformance`); every event's
`data.object` is validated against its own schema; errors that stripe-python
cannot send (no key, an unknown URL) are sent raw and checked the same way. The
test also checks that the flow reached every API route, and that the README
names every route with its spec path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import stripe

from stripe_sandbox import core
from stripe_sandbox.app import load_resources
from stripe_sandbox.testing import http_request, new_secret_key

from . import spec_check

README = Path(__file__).resolve().parents[1] / "README.md"


def api_routes() -> set[tuple[str, str]]:
    load_resources()
    routes = list(core._static.values()) + [r for b in core._dynamic.values() for r in b]  # noqa: SLF001
    return {(r.method, r.pattern) for r in routes if r.auth == "api"}


def _flow(sandbox, c: stripe.StripeClient, key: str) -> None:
    """A realistic tour of every endpoint (some answers are errors on purpose)."""
    acct = sandbox.connect_account(key, "shop@example.test", business_name="Shop")
    c.v1.accounts.retrieve_current()
    c.v1.accounts.retrieve(acct)
    we = c.v1.webhook_endpoints.create(params={"url": "https://example.test/hook", "enabled_events": ["*"]})
    c.v1.webhook_endpoints.retrieve(we.id)
    c.v1.webhook_endpoints.update(we.id, params={"description": "all"})
    c.v1.webhook_endpoints.list()

    cus = c.v1.customers.create(params={
        "email": "ada@example.test", "name": "Ada", "address": {"country": "GB", "line1": "1 Road"},
        "tax_id_data": [{"type": "eu_vat", "value": "DE123456789"}],
    })
    c.v1.customers.retrieve(cus.id, params={"expand": ["tax_ids", "invoice_credit_balance"]})
    c.v1.customers.update(cus.id, params={"metadata": {"crm": "1"}, "balance": -500})
    c.v1.customers.list(params={"email": "ada@example.test"})
    tid = c.v1.customers.tax_ids.create(cus.id, params={"type": "gb_vat", "value": "GB123456789"})
    c.v1.customers.tax_ids.list(cus.id)
    c.v1.customers.tax_ids.retrieve(cus.id, tid.id)
    c.v1.customers.tax_ids.delete(cus.id, tid.id)
    gone = c.v1.customers.create(params={"name": "Gone"})
    c.v1.customers.delete(gone.id)

    prod = c.v1.products.create(params={"name": "Consulting", "default_price_data": {
        "currency": "usd", "unit_amount": 1000}})
    c.v1.products.retrieve(prod.id, params={"expand": ["default_price"]})
    c.v1.products.update(prod.id, params={"description": "Hours"})
    c.v1.products.list()
    c.v1.products.delete(c.v1.products.create(params={"name": "Tmp"}).id)
    price = c.v1.prices.create(params={"product": prod.id, "currency": "usd", "unit_amount_decimal": "1250.5"})
    c.v1.prices.create(params={"product": prod.id, "currency": "usd", "billing_scheme": "tiered",
                               "tiers_mode": "graduated", "recurring": {"interval": "month"},
                               "tiers": [{"up_to": 10, "unit_amount": 100}, {"up_to": "inf", "unit_amount": 80}]})
    c.v1.prices.retrieve(price.id)
    c.v1.prices.update(price.id, params={"nickname": "hourly"})
    c.v1.prices.list(params={"expand": ["data.tiers"]})
    rate = c.v1.tax_rates.create(params={"display_name": "VAT", "percentage": 20, "inclusive": False})
    c.v1.tax_rates.retrieve(rate.id)
    c.v1.tax_rates.update(rate.id, params={"description": "UK VAT"})
    c.v1.tax_rates.list()
    coupon = c.v1.coupons.create(params={"percent_off": 10, "duration": "once"})
    c.v1.coupons.retrieve(coupon.id)
    c.v1.coupons.update(coupon.id, params={"name": "Ten"})
    c.v1.coupons.list()
    c.v1.coupons.delete(c.v1.coupons.create(params={"amount_off": 100, "currency": "usd"}).id)

    pm = c.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040}})
    c.v1.payment_methods.retrieve(pm.id)
    c.v1.payment_methods.attach(pm.id, params={"customer": cus.id})
    c.v1.payment_methods.update(pm.id, params={"billing_details": {"name": "Ada"}})
    c.v1.payment_methods.list(params={"customer": cus.id})
    c.v1.customers.payment_methods.list(cus.id)
    c.v1.customers.payment_methods.retrieve(cus.id, pm.id)
    c.v1.customers.update(cus.id, params={"invoice_settings": {"default_payment_method": pm.id}})
    spare = c.v1.payment_methods.attach("pm_card_mastercard", params={"customer": cus.id})
    c.v1.payment_methods.detach(spare.id)

    item = c.v1.invoice_items.create(params={"customer": cus.id, "pricing": {"price": price.id},
                                            "quantity_decimal": "28.5", "tax_rates": [rate.id]})
    c.v1.invoice_items.retrieve(item.id)
    c.v1.invoice_items.update(item.id, params={"description": "Consulting hours"})
    c.v1.invoice_items.list(params={"customer": cus.id})
    c.v1.invoice_items.delete(c.v1.invoice_items.create(params={"customer": cus.id, "amount": 5,
                                                                "currency": "usd"}).id)
    inv = c.v1.invoices.create(params={"customer": cus.id, "pending_invoice_items_behavior": "include",
                                       "discounts": [{"coupon": coupon.id}], "collection_method": "send_invoice",
                                       "days_until_due": 30})
    c.v1.invoices.retrieve(inv.id, params={"expand": ["customer", "discounts"]})
    c.v1.invoices.update(inv.id, params={"description": "October"})
    inv = c.v1.invoices.add_lines(inv.id, params={"lines": [{"amount": 700, "description": "Travel"},
                                                            {"amount": 300, "description": "Meals"}]})
    lines = c.v1.invoices.line_items.list(inv.id).data
    c.v1.invoices.update_lines(inv.id, params={"lines": [{"id": lines[0].id, "description": "Travel (train)"}]})
    c.v1.invoices.line_items.update(inv.id, lines[0].id, params={"metadata": {"k": "v"}})
    c.v1.invoices.remove_lines(inv.id, params={"lines": [{"id": lines[1].id, "behavior": "delete"}]})
    c.v1.invoices.finalize_invoice(inv.id)
    c.v1.invoices.send_invoice(inv.id)
    c.v1.invoices.pay(inv.id)
    c.v1.invoices.list(params={"customer": cus.id})
    c.v1.invoice_payments.list(params={"invoice": inv.id})
    ipay = c.v1.invoice_payments.list(params={"invoice": inv.id}).data[0]
    c.v1.invoice_payments.retrieve(ipay.id)

    def small_invoice(amount: int):
        draft = c.v1.invoices.create(params={"customer": cus.id, "collection_method": "send_invoice",
                                             "days_until_due": 7})
        return c.v1.invoices.add_lines(draft.id, params={"lines": [{"amount": amount}]})

    c.v1.invoices.delete(small_invoice(100).id)
    c.v1.invoices.void_invoice(c.v1.invoices.finalize_invoice(small_invoice(200).id).id)
    c.v1.invoices.mark_uncollectible(c.v1.invoices.finalize_invoice(small_invoice(300).id).id)
    attached = c.v1.invoices.finalize_invoice(small_invoice(400).id)
    pi_for = c.v1.payment_intents.create(params={"amount": 400, "currency": "usd", "customer": cus.id,
                                                 "payment_method": pm.id, "confirm": True})
    c.v1.invoices.attach_payment(attached.id, params={"payment_intent": pi_for.id})
    credited = c.v1.invoices.finalize_invoice(small_invoice(600).id)
    cn_params = {"invoice": credited.id, "reason": "order_change", "lines": [
        {"type": "invoice_line_item", "quantity": 1,
         "invoice_line_item": c.v1.invoices.line_items.list(credited.id).data[0].id}]}
    c.v1.credit_notes.preview(params=cn_params)
    note = c.v1.credit_notes.create(params=cn_params)
    c.v1.credit_notes.retrieve(note.id)
    c.v1.credit_notes.update(note.id, params={"memo": "Returned"})
    c.v1.credit_notes.list(params={"invoice": credited.id})
    c.v1.credit_notes.line_items.list(note.id)
    post = c.v1.credit_notes.create(params={"invoice": inv.id, "amount": 300, "credit_amount": 200,
                                            "refund_amount": 100})
    c.v1.credit_notes.void_credit_note(c.v1.credit_notes.create(params={
        "invoice": inv.id, "amount": 100, "out_of_band_amount": 100}).id)
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.credit_notes.void_credit_note(post.id)  # it refunded money
    declined = c.v1.invoices.finalize_invoice(small_invoice(500).id)
    bad = c.v1.payment_methods.attach("pm_card_chargeCustomerFail", params={"customer": cus.id})
    with pytest.raises(stripe.CardError):
        c.v1.invoices.pay(declined.id, params={"payment_method": bad.id})

    pi = c.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "customer": cus.id,
                                             "payment_method": pm.id})
    c.v1.payment_intents.update(pi.id, params={"description": "Deposit"})
    c.v1.payment_intents.confirm(pi.id)
    pi = c.v1.payment_intents.retrieve(pi.id, params={"expand": ["latest_charge"]})
    c.v1.payment_intents.list(params={"customer": cus.id})
    c.v1.payment_intents.cancel(c.v1.payment_intents.create(params={"amount": 100, "currency": "usd"}).id)
    with pytest.raises(stripe.CardError):
        c.v1.payment_intents.create(params={"amount": 100, "currency": "usd", "confirm": True,
                                            "payment_method": "pm_card_chargeDeclined"})
    charge_id = pi.latest_charge.id
    c.v1.charges.retrieve(charge_id)
    c.v1.charges.update(charge_id, params={"description": "Deposit charge"})
    c.v1.charges.list(params={"customer": cus.id})
    refund = c.v1.refunds.create(params={"payment_intent": pi.id, "amount": 500})
    c.v1.refunds.retrieve(refund.id)
    c.v1.refunds.update(refund.id, params={"metadata": {"reason": "partial"}})
    c.v1.refunds.list(params={"charge": charge_id})
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.refunds.cancel(refund.id)  # a succeeded card refund cannot be canceled
    c.raw_request("get", f"/v1/charges/{charge_id}/refunds")
    c.raw_request("get", f"/v1/charges/{charge_id}/refunds/{refund.id}")
    txns = c.v1.balance_transactions.list()
    c.v1.balance_transactions.retrieve(txns.data[0].id)

    si = c.v1.setup_intents.create(params={"customer": cus.id, "payment_method_types": ["card"]})
    c.v1.setup_intents.update(si.id, params={"metadata": {"k": "v"}})
    c.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    c.v1.setup_intents.retrieve(si.id)
    c.v1.setup_intents.list(params={"customer": cus.id})
    c.v1.setup_attempts.list(params={"setup_intent": si.id})
    c.v1.setup_intents.cancel(c.v1.setup_intents.create(params={"customer": cus.id}).id)
    session = c.v1.checkout.sessions.create(params={
        "mode": "payment", "success_url": "https://app.test/ok", "customer": cus.id,
        "line_items": [{"price": price.id, "quantity": 2}]})
    c.v1.checkout.sessions.retrieve(session.id)
    c.v1.checkout.sessions.update(session.id, params={"metadata": {"order": "1"}})
    c.v1.checkout.sessions.line_items.list(session.id)
    c.v1.checkout.sessions.list()
    c.v1.checkout.sessions.expire(session.id)
    c.v1.checkout.sessions.create(params={"mode": "setup", "currency": "usd", "customer": cus.id,
                                          "success_url": "https://app.test/ok"})

    # What happens later: a refund of the refund-failure card fails.
    failing = c.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                  "payment_method": "pm_card_refundFail"})
    c.v1.refunds.create(params={"payment_intent": failing.id, "amount": 300})
    disputed = c.v1.payment_intents.create(params={"amount": 1500, "currency": "usd", "confirm": True,
                                                   "payment_method": "pm_card_createDispute"})
    dispute = c.v1.disputes.list(params={"payment_intent": disputed.id}).data[0]
    c.v1.disputes.retrieve(dispute.id)
    c.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"},
                                             "metadata": {"case": "1"}})
    inquiry = c.v1.payment_intents.create(params={"amount": 1500, "currency": "usd", "confirm": True,
                                                  "payment_method": "pm_card_createDisputeInquiry"})
    c.v1.disputes.close(c.v1.disputes.list(params={"payment_intent": inquiry.id}).data[0].id)
    assert sorted(j["kind"] for j in sandbox.control("POST", "/clock", {"advance_seconds": 3601})["ran"]) == [
        "dispute_decided", "refund_fails"]
    three_ds = c.v1.payment_intents.create(params={"amount": 800, "currency": "usd", "confirm": True,
                                                   "payment_method": "pm_card_threeDSecure2Required"})
    assert http_request("POST", three_ds.next_action.redirect_to_url.url, body="action=complete")[0] == 200
    c.v1.payment_intents.retrieve(three_ds.id)
    ach = c.v1.payment_methods.create(params={
        "type": "us_bank_account", "billing_details": {"name": "Ada"},
        "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789"}})
    c.v1.payment_methods.attach(ach.id, params={"customer": cus.id})
    c.v1.invoices.pay(c.v1.invoices.finalize_invoice(small_invoice(700).id).id, params={"payment_method": ach.id})
    sepa = c.v1.payment_methods.create(params={
        "type": "sepa_debit", "billing_details": {"name": "Ada", "email": "ada@example.test"},
        "sepa_debit": {"iban": "DE62370400440532013001"}})
    c.v1.payment_intents.create(params={"amount": 900, "currency": "eur", "payment_method": sepa.id,
                                        "payment_method_types": ["sepa_debit"], "confirm": True})
    assert [j["kind"] for j in sandbox.control("POST", "/clock", {"advance_seconds": 86400})["ran"]] == [
        "bank_debit_settles"] * 2
    # Daily automatic payouts of what became available (resources/payouts.py).
    assert "payouts" in [j["kind"] for j in sandbox.control("POST", "/clock", {"advance_seconds": 3 * 86400})["ran"]]
    payout = c.v1.payouts.list(params={"limit": 3}).data[0]
    c.v1.payouts.retrieve(payout.id)
    c.v1.balance_transactions.list(params={"payout": payout.id, "expand": ["data.source"]})
    c.v1.balance.retrieve()

    events = c.v1.events.list(params={"limit": 100})
    c.v1.events.retrieve(events.data[0].id)
    c.v1.webhook_endpoints.delete(we.id)

    # Errors stripe-python can send.
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.customers.retrieve("cus_missing")
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.customers.create(params={"emial": "typo@example.test"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(stripe.PermissionError):
        c.v1.customers.list(options={"stripe_account": "acct_1NotConnected00"})
    c.v1.customers.create(params={"name": "A"}, options={"idempotency_key": "conf-1"})
    with pytest.raises(stripe.IdempotencyError):
        c.v1.customers.create(params={"name": "B"}, options={"idempotency_key": "conf-1"})
    with pytest.raises(stripe.AuthenticationError):
        sandbox.client("sk_live_" + "x" * 24).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError):
        c.raw_request("get", "/v1/no_such_thing")


def _raw_errors(sandbox, checker) -> list[tuple[str, list[str]]]:
    """Errors sent without stripe-python: no key, a bad key, an unknown URL."""
    out = []
    for method, path, headers in (
        ("GET", "/v1/customers", {}),
        ("GET", "/v1/customers", {"Authorization": "Bearer not_a_key"}),
        ("POST", "/v1/no_such_thing", {"Authorization": "Bearer " + new_secret_key()}),
    ):
        status, _, body = http_request(method, sandbox.base_url + path, headers=headers)
        assert status >= 400
        _, errs = checker.check_response(method, path, status, json.loads(body))
        out.append((f"{method} {path} {status}", errs))
    return out


def test_conformance_flow_validates_against_spec(sandbox, spec_conformance):
    spec_check.require_spec()
    assert spec_conformance is not None
    key = new_secret_key()
    _flow(sandbox, sandbox.client(key), key)
    recorder = spec_conformance
    checker = recorder.checker
    # Every event's data.object, against its own schema, also as delivered (events list).
    events, after = [], ""
    while True:
        _, _, body = http_request("GET", f"{sandbox.base_url}/v1/events?limit=100{after}",
                                  headers={"Authorization": f"Bearer {key}"})
        page = json.loads(body)
        events += page["data"]
        if not page["has_more"]:
            break
        after = f"&starting_after={page['data'][-1]['id']}"
    event_errors = {e["id"]: checker.errors("event", e) for e in events}
    raw = _raw_errors(sandbox, checker)

    assert not recorder.failures, recorder.report()
    assert {k: v for k, v in event_errors.items() if v} == {}
    assert [r for r in raw if r[1]] == []
    served = set()
    for seen in recorder.seen:
        route, _ = core.match(seen["method"], seen["path"])
        if route is not None:
            served.add((route.method, route.pattern))
    served &= api_routes()
    missing = api_routes() - served
    assert missing == set(), f"endpoints the flow does not reach: {sorted(missing)}"
    errors = [s for s in recorder.seen if s["status"] != 200]
    assert len(errors) >= 8 and all(s["spec_path"] or s["status"] == 404 for s in errors)
    print(f"\nconformance: {len(recorder.seen)} answers ({len(errors)} errors) over "
          f"{len(served)} endpoints and {len(events)} events validate against the spec; "
          f"{len(raw)} raw error answers too")


def test_readme_names_every_endpoint_with_its_spec_path():
    spec_check.require_spec()
    spec = spec_check.checker().spec
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(\w+ /v1/[^`]*)` \| `([^`]*)` \|", text, re.M))
    missing, wrong = [], []
    for method, pattern in sorted(api_routes()):
        spec_path = rows.get(f"{method} {pattern}")
        if spec_path is None:
            missing.append(f"{method} {pattern}")
        elif method.lower() not in spec["paths"].get(spec_path, {}) or \
                re.sub(r"\{\w+\}", "{}", spec_path) != re.sub(r"\{\w+\}", "{}", pattern):
            wrong.append(f"{method} {pattern} -> {spec_path}")
    assert (missing, wrong) == ([], [])


def test_shape_table_is_derived_from_the_spec():
    """The committed spec_shapes.json is what spec_build.py makes of the spec."""
    spec_check.require_spec()
    from stripe_sandbox import spec_build, spec_shapes

    assert spec_build.build(spec_check.checker().spec) == json.loads(spec_shapes.TABLE_FILE.read_text())


def test_validator_rejects_what_stripe_would_not_send():
    """The checker itself: null on a non-nullable field, an unknown key, a missing
    required one and an error body with `code: null` are all caught."""
    spec_check.require_spec()
    checker = spec_check.checker()
    good = {"id": "txr_1", "object": "tax_rate", "active": True, "country": None, "created": 1,
            "description": None, "display_name": "VAT", "effective_percentage": None, "flat_amount": None,
            "inclusive": False, "jurisdiction": None, "jurisdiction_level": None, "livemode": False,
            "metadata": {}, "percentage": 20.0, "rate_type": None, "state": None, "tax_type": None}
    assert checker.object_errors(good) == []
    assert checker.object_errors({**good, "active": None})
    assert checker.object_errors({**good, "colour": "red"})
    assert checker.object_errors({k: v for k, v in good.items() if k != "display_name"})
    error = {"error": {"type": "invalid_request_error", "message": "No such customer", "code": None}}
    assert checker.check_response("GET", "/v1/customers/cus_x", 404, error)[1]
    assert checker.check_response("GET", "/v1/customers/cus_x", 404,
                                  {"error": {"type": "invalid_request_error", "message": "m"}})[1] == []
