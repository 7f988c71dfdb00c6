"""Disputes (docs.stripe.com/api/disputes, /testing#disputes): Stripe's dispute test
cards open a dispute right after their charge succeeds.

    pm_card_createDispute (4000 0000 0000 0259)              fraudulent, needs_response
    pm_card_createDisputeProductNotReceived (... 2685)       product_not_received, needs_response
    pm_card_createDisputeInquiry (... 1976)                  fraudulent, warning_needs_response

A chargeback withdraws the disputed amount and Stripe's 15.00 dispute fee from the
balance at once: one balance transaction (type `adjustment`, reporting category
`dispute`, amount -amount, fee 1500), events `charge.dispute.created` then
`charge.dispute.funds_withdrawn`. An inquiry withdraws nothing.

`POST /v1/disputes/{id}` stages evidence (`submit=false`) or submits it (the default):
status `under_review` (`warning_under_review` for an inquiry), `charge.dispute.updated`.
An hour of sandbox time later the bank decides, as Stripe's test evidence says:
`evidence[uncategorized_text]=winning_evidence` wins (`won`, or `warning_closed` for an
inquiry: the amount and the fee come back in a `dispute_reversal` balance
transaction, `charge.dispute.funds_reinstated`), `losing_evidence` loses (`lost`; an
inquiry escalates to a lost chargeback, its funds withdrawn then); both send
`charge.dispute.closed`. Other evidence stays under review. Unanswered by
`evidence_details.due_by` (7 days), a dispute is lost (an inquiry closes).
`POST /v1/disputes/{id}/close` accepts it: lost (an inquiry: warning_closed).
"""

from __future__ import annotations

import stripe

from ..core import apply_update, copy_json, route
from ..errors import invalid_request
from ..scheduler import job, schedule
from ..schema import shape
from .payments_charges import new_balance_transaction
from .payments_common import exponent

DISPUTE_FEE_USD_CENTS = 1500  # "$15.00 fee (or local equivalent)" (support.stripe.com, dispute fees)
EVIDENCE_DUE_SECONDS = 7 * 24 * 3600
DECISION_AFTER_SECONDS = 3600
DISPUTE_CARDS = {
    "dispute_fraudulent": ("fraudulent", False),
    "dispute_product_not_received": ("product_not_received", False),
    "dispute_inquiry": ("fraudulent", True),
}
_OPEN = ("needs_response", "warning_needs_response")
_CLOSED = ("won", "lost", "warning_closed", "prevented")


def dispute_fee(currency: str) -> int:
    """15.00 in the charge's currency (the sandbox converts nothing)."""
    exp = exponent(currency)
    return DISPUTE_FEE_USD_CENTS * 10 ** exp // 100


def open_dispute_if_test_card(ctx, charge: dict, behaviour: str | None) -> dict | None:
    """After a succeeded charge: the dispute its test card asks for, or None."""
    if behaviour not in DISPUTE_CARDS:
        return None
    reason, inquiry = DISPUTE_CARDS[behaviour]
    now = ctx.now()
    did = ctx.new_id("dp")
    card = charge["payment_method_details"]["card"]
    dispute = shape(
        "dispute",
        id=did,
        amount=charge["amount"],
        balance_transactions=[],
        charge=charge["id"],
        created=now,
        currency=charge["currency"],
        enhanced_eligibility_types=[],
        evidence={},
        evidence_details={"due_by": now + EVIDENCE_DUE_SECONDS, "enhanced_eligibility": {},
                          "has_evidence": False, "past_due": False, "submission_count": 0},
        is_charge_refundable=inquiry,
        livemode=False,
        metadata={},
        payment_intent=charge["payment_intent"],
        payment_method_details={"card": {"brand": card["brand"], "case_type": "inquiry" if inquiry else "chargeback",
                                         "network": card["brand"], "network_reason_code": None},
                                "type": "card"},
        reason=reason,
        status="warning_needs_response" if inquiry else "needs_response",
    )
    ctx.insert(dispute)
    charge = ctx.get("charge", charge["id"])
    charge["disputed"] = True
    ctx.save(charge)
    if inquiry:
        ctx.emit("charge.dispute.created", dispute)
    else:  # the dispute already shows the withdrawal when it is announced
        _withdraw(ctx, dispute, announce=lambda: ctx.emit("charge.dispute.created", dispute))
    schedule(ctx, at=now + EVIDENCE_DUE_SECONDS, kind="dispute_due", dispute=did)
    return dispute


def _withdraw(ctx, dispute: dict, announce=None) -> None:
    fee = dispute_fee(dispute["currency"])
    txn = new_balance_transaction(
        ctx, amount=-dispute["amount"], currency=dispute["currency"], source=dispute["id"], kind="adjustment",
        category="dispute", description=f"Chargeback withdrawal for {dispute['charge']}", fee=fee,
        fee_description="Dispute fee",
    )
    dispute["balance_transactions"].append(copy_json(txn))
    dispute["is_charge_refundable"] = False
    ctx.save(dispute)
    if announce is not None:
        announce()
    ctx.emit("charge.dispute.funds_withdrawn", dispute)


def _reinstate(ctx, dispute: dict) -> None:
    fee = dispute_fee(dispute["currency"])
    txn = new_balance_transaction(
        ctx, amount=dispute["amount"], currency=dispute["currency"], source=dispute["id"], kind="adjustment",
        category="dispute_reversal", description=f"Chargeback reversal for {dispute['charge']}", fee=-fee,
        fee_description="Dispute fee refund",
    )
    dispute["balance_transactions"].append(copy_json(txn))
    ctx.save(dispute)
    ctx.emit("charge.dispute.funds_reinstated", dispute)


def _close(ctx, dispute: dict, outcome: str) -> None:
    """Close as `won` or `lost` (inquiries: won -> warning_closed, lost -> a lost chargeback)."""
    inquiry = dispute["status"].startswith("warning_")
    previous = {"status": dispute["status"]}
    if inquiry and outcome == "won":
        dispute["status"] = "warning_closed"
    else:
        if inquiry:  # escalated to a chargeback, which is lost
            _withdraw(ctx, dispute)
        dispute["status"] = outcome
    dispute["evidence_details"]["past_due"] = False
    ctx.save(dispute)
    ctx.emit("charge.dispute.closed", dispute, previous)
    if outcome == "won" and not inquiry:
        _reinstate(ctx, dispute)


@job("dispute_decided")
def dispute_decided(ctx, *, dispute: str, outcome: str) -> None:
    obj = ctx.get("dispute", dispute)
    if obj["status"] in ("under_review", "warning_under_review"):
        _close(ctx, obj, outcome)


@job("dispute_due")
def dispute_due(ctx, *, dispute: str) -> None:
    """Evidence not submitted in time: the dispute is lost (an inquiry just closes)."""
    obj = ctx.get("dispute", dispute)
    if obj["status"] not in _OPEN:
        return
    previous = {"status": obj["status"]}
    obj["evidence_details"]["past_due"] = True
    obj["status"] = "warning_closed" if obj["status"] == "warning_needs_response" else "lost"
    ctx.save(obj)
    ctx.emit("charge.dispute.closed", obj, previous)


def _test_outcome(evidence: dict) -> str | None:
    text = (evidence.get("uncategorized_text") or "").strip()
    return {"winning_evidence": "won", "losing_evidence": "lost"}.get(text)


@route("GET", "/v1/disputes/{dispute}", params=stripe.params.DisputeRetrieveParams)
def retrieve(ctx, params, dispute):
    return ctx.get("dispute", dispute)


@route("POST", "/v1/disputes/{dispute}", params=stripe.params.DisputeUpdateParams)
def update(ctx, params, dispute):
    obj = ctx.get("dispute", dispute)
    evidence = params.get("evidence")
    submit = params.get("submit", True) if evidence is not None or "submit" in params else False
    if (evidence is not None or submit) and obj["status"] not in _OPEN:
        if obj["status"] in _CLOSED:
            raise invalid_request(f"This dispute is already closed ({obj['status']}); its evidence can no "
                                  "longer be updated.")
        raise invalid_request("This dispute's evidence has already been submitted; it can no longer be updated.")
    before = copy_json(obj)
    previous = apply_update(obj, {k: v for k, v in params.items() if k in ("evidence", "metadata")},
                            ("evidence", "metadata"))
    if evidence is not None:
        obj["evidence_details"]["has_evidence"] = True
    if submit:
        obj["status"] = "warning_under_review" if obj["status"] == "warning_needs_response" else "under_review"
        obj["evidence_details"]["submission_count"] += 1
        outcome = _test_outcome(obj["evidence"])
        if outcome:
            schedule(ctx, at=ctx.now() + DECISION_AFTER_SECONDS, kind="dispute_decided", dispute=dispute,
                     outcome=outcome)
    for key in ("status", "evidence_details"):
        if obj[key] != before[key]:
            previous[key] = before[key]
    if previous:
        ctx.save(obj)
        ctx.emit("charge.dispute.updated", obj, previous)
    return obj


@route("POST", "/v1/disputes/{dispute}/close", params=stripe.params.DisputeCloseParams)
def close(ctx, params, dispute):
    obj = ctx.get("dispute", dispute)
    if obj["status"] in _CLOSED:
        raise invalid_request(f"This dispute is already closed ({obj['status']}).")
    previous = {"status": obj["status"]}
    obj["status"] = "warning_closed" if obj["status"].startswith("warning_") else "lost"
    ctx.save(obj)
    ctx.emit("charge.dispute.closed", obj, previous)
    return obj


@route("GET", "/v1/disputes", params=stripe.params.DisputeListParams)
def list_(ctx, params):
    checks = [(k, params[k]) for k in ("charge", "payment_intent") if k in params]
    return ctx.list("dispute", params, url="/v1/disputes", where=lambda d: all(d.get(k) == v for k, v in checks))
