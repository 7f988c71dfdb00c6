"""Stripe's official Node client (npm `stripe` 22.6.2, the release pinned to API
version 2026-08-26.dahlia, as stripe-python 15.6.2) runs a customer -> invoice ->
pay -> refund flow against the sandbox without error (node_check/flow.js).

The package is installed with `npm ci` from node_check/package-lock.json into
node_check/node_modules (gitignored), once; the test skips, saying why, without
node or npm, or when the install fails (no registry).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stripe_sandbox.testing import new_secret_key

CHECK = Path(__file__).resolve().parents[1] / "node_check"


def _installed_version() -> str | None:
    pkg = CHECK / "node_modules" / "stripe" / "package.json"
    return json.loads(pkg.read_text())["version"] if pkg.exists() else None


@pytest.fixture(scope="module")
def node_check():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the Node client check (Node 20 on CI)")
    wanted = json.loads((CHECK / "package.json").read_text())["dependencies"]["stripe"]
    if _installed_version() != wanted:
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=CHECK,
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (is the npm registry reachable?): {done.stderr[-500:]}")
    assert _installed_version() == wanted
    return node


def test_node_client_customer_invoice_pay_refund(sandbox, node_check):
    key = new_secret_key()
    done = subprocess.run([node_check, "flow.js", sandbox.base_url, key], cwd=CHECK,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["api_version"] == "2026-08-26.dahlia"
    assert seen["invoice"]["status"] == "paid" and seen["invoice"]["amount_paid"] == 2850
    assert seen["invoice"]["amount_paid_off_stripe"] == 0
    assert seen["payment_intent"]["status"] == "succeeded"
    assert seen["refund"] == {**seen["refund"], "status": "succeeded", "amount": 850}
    assert seen["charge"] == {"amount_refunded": 850, "refunded": False}
    assert seen["missing"] == {"type": "StripeInvalidRequestError", "code": "resource_missing",
                               "status": 404, "param": "id"}
    assert {"invoice.paid", "refund.created", "charge.refunded"} <= set(seen["event_types"])
    # The requests were served by this sandbox (its request log).
    paths = {r.get("path") for r in sandbox.requests()}
    assert {"/v1/customers", "/v1/invoiceitems", "/v1/refunds"} <= paths
