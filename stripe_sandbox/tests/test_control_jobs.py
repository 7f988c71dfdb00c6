"""The control plane's clock and jobs, its HTML page, and what the jobs send under
webhook chaos."""

import json
import urllib.parse

from stripe_sandbox.testing import http_request

DAY = 24 * 3600


def test_control_clock_refuses_going_back(sandbox):
    status, _, body = http_request("POST", sandbox.base_url + "/_sandbox/clock",
                                   body=json.dumps({"advance_seconds": -5}))
    assert status == 400 and "only moves forward" in json.loads(body)["error"]


def test_control_jobs_lists_pending_soonest_first_and_run_runs_due_ones(sandbox):
    client = sandbox.client()
    client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                             "payment_method": "pm_card_createDispute"})
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                  "payment_method": "pm_card_refundFail"})
    client.v1.refunds.create(params={"payment_intent": pi.id})
    jobs = sandbox.control("GET", "/jobs")["data"]
    assert [j["kind"] for j in jobs] == ["refund_fails", "dispute_due"]
    assert sandbox.control("POST", "/jobs/run")["ran"] == []
    sandbox.sandbox.clock.advance(3600)  # time passes without running anything yet
    assert [r["kind"] for r in sandbox.control("POST", "/jobs/run")["ran"]] == ["refund_fails"]
    assert [j["kind"] for j in sandbox.control("GET", "/jobs")["data"]] == ["dispute_due"]


def test_control_reset_drops_pending_jobs(sandbox):
    client = sandbox.client()
    client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                             "payment_method": "pm_card_createDispute"})
    sandbox.control("POST", "/reset")
    assert sandbox.control("GET", "/jobs")["data"] == []


def test_control_page_advances_the_clock_with_a_button(sandbox):
    client = sandbox.client()
    pm = client.v1.payment_methods.create(params={
        "type": "us_bank_account", "billing_details": {"name": "Ada"},
        "us_bank_account": {"routing_number": "110000000", "account_number": "000123456789"}})
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                  "payment_method": pm.id})
    status, _, body = http_request("GET", sandbox.base_url + "/_sandbox/ui")
    page = body.decode()
    assert status == 200 and "bank_debit_settles" in page and f"value={DAY}" in page
    status, headers, _ = http_request("POST", sandbox.base_url + "/_sandbox/ui/clock",
                                      body=urllib.parse.urlencode({"advance_seconds": DAY}))
    assert status == 302 and "bank_debit_settles" in urllib.parse.unquote(headers["Location"])
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    page = http_request("GET", sandbox.base_url + headers["Location"])[2].decode()
    assert "bank_debit_settles</td>" not in page and "Ran: bank_debit_settles" in page
    # What settled now waits for the daily automatic payout (resources/payouts.py).
    assert "<td>automatic payout</td>" in page


def test_jobs_events_arrive_under_webhook_chaos(sandbox, webhook_receiver):
    client = sandbox.client()
    client.v1.webhook_endpoints.create(params={"url": webhook_receiver.url, "enabled_events": ["*"]})
    sandbox.control("POST", "/webhooks/chaos", {"duplicate": 0.5, "shuffle": True, "delay_ms": [0, 40], "seed": 3})
    pi = client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd", "confirm": True,
                                                  "payment_method": "pm_card_createDispute"})
    (dispute,) = client.v1.disputes.list(params={"payment_intent": pi.id}).data
    client.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "losing_evidence"}})
    sandbox.advance_clock(3600)
    sandbox.drain()
    emitted = {e.id: e.type for e in client.v1.events.list(params={"limit": 100}).data}
    got = [e["id"] for e in webhook_receiver.events()]
    assert set(got) == set(emitted)  # every event arrives, the job's included
    assert len(got) > len(emitted)  # some twice
    assert "charge.dispute.closed" in emitted.values()
