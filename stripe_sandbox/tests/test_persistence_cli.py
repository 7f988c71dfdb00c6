"""State kept across restarts with --state, and the command line."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import stripe

from stripe_sandbox import start_in_thread
from stripe_sandbox.server import is_loopback

ROOT = Path(__file__).resolve().parents[2]


def client_for(base, key):
    return stripe.StripeClient(key, base_addresses={"api": base, "connect": base, "files": base})


def test_persistence_state_survives_restart(tmp_path):
    state = tmp_path / "state.json"
    key = "sk_test_persistence01"
    server, base = start_in_thread(state_file=str(state))
    try:
        client = client_for(base, key)
        platform = client.v1.accounts.retrieve_current().id
        cus = client.v1.customers.create(params={"email": "kept@example.test"}, options={"idempotency_key": "keep"})
        product = client.v1.products.create(params={"name": "Kept", "default_price_data": {"currency": "eur", "unit_amount": 5}})
    finally:
        server.stop()
    assert json.loads(state.read_text())["objects"][cus.id]["email"] == "kept@example.test"

    server, base = start_in_thread(state_file=str(state))
    try:
        client = client_for(base, key)
        assert client.v1.accounts.retrieve_current().id == platform
        assert client.v1.customers.retrieve(cus.id).email == "kept@example.test"
        assert client.v1.products.retrieve(product.id, params={"expand": ["default_price"]}).default_price.unit_amount == 5
        again = client.v1.customers.create(params={"email": "kept@example.test"}, options={"idempotency_key": "keep"})
        assert again.id == cus.id and again.last_response.headers["Idempotent-Replayed"] == "true"
        assert {e.type for e in client.v1.events.list().data} == {"customer.created", "product.created", "price.created"}
    finally:
        server.stop()


def test_persistence_without_state_file_starts_empty(tmp_path):
    server, base = start_in_thread()
    try:
        client_for(base, "sk_test_ephemeral001").v1.customers.create(params={})
    finally:
        server.stop()
    server, base = start_in_thread()
    try:
        assert client_for(base, "sk_test_ephemeral001").v1.customers.list().data == []
    finally:
        server.stop()


def start_cli(*args):
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, proc.stderr.read()
    return proc, line.split(" on ", 1)[1].split()[0]


def test_cli_serves_and_stops_cleanly_on_sigterm(tmp_path):
    state = tmp_path / "cli-state.json"
    proc, base = start_cli("--state", str(state))
    try:
        cus = client_for(base, "sk_test_clistate0001").v1.customers.create(params={"email": "cli@example.test"})
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert "stripe_sandbox stopped" in proc.stdout.read()
    proc, base = start_cli("--state", str(state))
    try:
        assert client_for(base, "sk_test_clistate0001").v1.customers.retrieve(cus.id).email == "cli@example.test"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_cli_refuses_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "stripe_sandbox", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode != 0
    assert "non-loopback" in result.stderr


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.2", False), ("example.com", False),
])
def test_cli_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_persistence_keeps_what_the_sandbox_will_do_later(tmp_path):
    import urllib.request

    state = tmp_path / "state.json"
    key = "sk_test_persistencejobs"
    server, base = start_in_thread(state_file=str(state))
    try:
        client = client_for(base, key)
        pi = client.v1.payment_intents.create(params={"amount": 900, "currency": "usd", "confirm": True,
                                                      "payment_method": "pm_card_refundFail"})
        refund = client.v1.refunds.create(params={"payment_intent": pi.id})
    finally:
        server.stop()
    server, base = start_in_thread(state_file=str(state))
    try:
        client = client_for(base, key)
        assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
        req = urllib.request.Request(base + "/_sandbox/clock", data=b'{"advance_seconds": 3600}', method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        ran = json.loads(opener.open(req, timeout=10).read())["ran"]
        assert [r["kind"] for r in ran] == ["refund_fails"]
        assert client.v1.refunds.retrieve(refund.id).status == "failed"
    finally:
        server.stop()
