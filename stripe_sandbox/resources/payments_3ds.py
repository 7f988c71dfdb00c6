"""3-D Secure (docs.stripe.com/testing#regulatory-cards): `pm_card_threeDSecure2Required`
(4000 0000 0000 3220) and `pm_card_threeDSecureRequired` (4000 0000 0000 3063) need the
customer's authentication before they are charged.

On-session (a PaymentIntent confirmed by API, the hosted invoice page) the
PaymentIntent goes `requires_action` with `next_action.redirect_to_url`: the URL of the
sandbox's authentication page (`/hosted/three_d_secure/{token}`, like Stripe's test
page: "Complete authentication" / "Fail authentication") and the `return_url` given at
confirmation; `payment_intent.requires_action` is sent and nothing is charged yet.
Completing it charges the card as usual (`charge.succeeded`, `payment_intent.succeeded`,
and the invoice paid); failing it sends the PaymentIntent back to
`requires_payment_method` with `last_payment_error.code`
`payment_intent_authentication_failure` (`payment_intent.payment_failed`, and for an
invoice `invoice.payment_failed`). Either way the page redirects (303) to the
`return_url` (with `payment_intent` and `payment_intent_client_secret`, as Stripe does)
or back to the hosted invoice page. Off-session (`off_session=true`, and
`POST /v1/invoices/{id}/pay`, which pays off-session) the card is declined with
`authentication_required`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from ..core import Response, copy_json, random_token, route
from ..schema import shape
from .billing_common import base_url
from .payments_common import act_as_owner, internal

AUTH_FAILURE = ("The provided PaymentMethod has failed authentication. You can provide payment_method_data or a "
                "new PaymentMethod to attempt to fulfill this PaymentIntent again.")


def require_action(ctx, pi: dict, pm: dict, *, return_url: str | None) -> dict:
    """Hold `pi` for the customer's authentication (see the module docstring)."""
    state = internal(ctx, pi["id"])
    state.setdefault("three_ds_secret", random_token(24))
    if return_url:
        state["return_url"] = return_url
    url = f"{base_url(ctx)}/hosted/three_d_secure/{pi['id']}_{state['three_ds_secret']}"
    pi.update(status="requires_action", payment_method=pm["id"], last_payment_error=None,
              next_action={"type": "redirect_to_url",
                           "redirect_to_url": {"url": url, "return_url": state.get("return_url")}})
    ctx.save(pi)
    ctx.emit("payment_intent.requires_action", pi)
    return pi


def is_authenticated(ctx, pi: dict) -> bool:
    return bool(internal(ctx, pi["id"], create=False).get("authenticated"))


def _intent_of_token(ctx, token: str) -> dict | None:
    pi_id, _, secret = token.rpartition("_")
    if not pi_id.startswith("pi_") or act_as_owner(ctx, pi_id) is None:
        return None
    pi = ctx.find(pi_id, "payment_intent")
    state = internal(ctx, pi_id, create=False) if pi else {}
    return pi if state.get("three_ds_secret") == secret else None


def _page(body: str, status: int = 200) -> Response:
    from .hosted import page

    return page("3D Secure authentication", body, status)


@route("GET", "/hosted/three_d_secure/{token}", auth="public")
def challenge(ctx, params, token):
    from .hosted import esc
    from .payments_common import format_amount

    pi = _intent_of_token(ctx, token)
    if pi is None:
        return _page("<h1>Authentication not found</h1><p id=error>This link is not valid.</p>", 404)
    if pi["status"] != "requires_action":
        return _page(f"<h1>Nothing to authenticate</h1><p id=state>This payment is {esc(pi['status'])}.</p>")
    amount = format_amount(pi["amount"], pi["currency"])
    return _page(f"""<h1>3D Secure 2 test page</h1>
<p id=amount>Authenticate a payment of {amount}.</p>
<p class=note>As on Stripe's test page, choose the outcome of the authentication.</p>
<form method=post action="/hosted/three_d_secure/{esc(token)}">
<button type=submit name=action value=complete id=complete>Complete authentication</button>
<button type=submit name=action value=fail id=fail style="background:#697386">Fail authentication</button>
</form>""")


@route("POST", "/hosted/three_d_secure/{token}", auth="public")
def authenticate(ctx, form, token):
    from .billing import invoice_apply_payment, invoice_record_failed_attempt
    from .payments import confirm

    pi = _intent_of_token(ctx, token)
    if pi is None:
        return _page("<h1>Authentication not found</h1><p id=error>This link is not valid.</p>", 404)
    state = internal(ctx, pi["id"])
    invoice_id = state.get("invoice")
    if pi["status"] == "requires_action":
        pi = ctx.get("payment_intent", pi["id"])
        pm = ctx.get("payment_method", pi["payment_method"], param="payment_method")
        pi["next_action"] = None
        if form.get("action") == "complete":
            state["authenticated"] = True
            pi, charge = confirm(ctx, pi, pm)
            if invoice_id:
                internal(ctx, charge["id"])["invoice"] = invoice_id
                invoice_apply_payment(ctx, invoice_id, payment_intent=copy_json(pi), charge=charge)
        else:
            pi.update(status="requires_payment_method", payment_method=None, last_payment_error={
                "code": "payment_intent_authentication_failure", "message": AUTH_FAILURE,
                "payment_method": copy_json(pm), "payment_method_type": "card", "type": "invalid_request_error",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure"})
            pi.update(shape("payment_intent", **pi))
            ctx.save(pi)
            ctx.emit("payment_intent.payment_failed", pi)
            if invoice_id:
                invoice_record_failed_attempt(ctx, invoice_id, payment_intent=copy_json(pi),
                                              error=pi["last_payment_error"])
    if state.get("return_url"):
        sep = "&" if "?" in state["return_url"] else "?"
        query = urlencode({"payment_intent": pi["id"], "payment_intent_client_secret": pi["client_secret"],
                           "redirect_status": "succeeded" if pi["status"] == "succeeded" else "failed"})
        return Response.redirect(f"{state['return_url']}{sep}{query}")
    if invoice_id:
        raw = ctx.find(invoice_id, "invoice")
        return Response(303, b"", {"Location": f"/hosted/invoices/{raw['_hosted_token']}"})
    return _page(f"<h1>Authentication done</h1><p id=state>The payment is {pi['status']}.</p>")
