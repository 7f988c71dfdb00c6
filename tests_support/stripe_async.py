"""What Stripe does on its own, later, that no API call of ours can make the sandbox do
(yet): played on the in-process sandbox's state, the way Stripe documents it. The events
Stripe would send about it are hand-made and delivered signed through the app's intake
(see the tests that use these).

`refund_fails(...)`: a card refund that Stripe accepted fails afterwards (Stripe's test
card 4000 0000 0000 5126: "the refund's status begins as succeeded; some time later it
transitions to failed and a charge.refund.updated event is sent"). Stripe then takes the
amount off the charge's `amount_refunded` and sets the refund's `failure_reason`.
"""
from __future__ import annotations

from tests_support.sandbox import SERVERS


def refund_fails(*, base_url: str, refund_id: str, reason: str = "expired_or_canceled_card") -> dict:
    """Fail a succeeded refund in the sandbox's state; returns the refund as it now is."""
    store = SERVERS[base_url].sandbox.store
    with store.lock:
        refund = store.objects[refund_id]
        assert refund["status"] == "succeeded", refund["status"]
        refund["status"] = "failed"
        refund["failure_reason"] = reason
        charge = store.objects[refund["charge"]]
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        charge["refunds"]["data"] = [dict(refund) if r["id"] == refund_id else r for r in charge["refunds"]["data"]]
        store.dirty = True
        return dict(refund)
