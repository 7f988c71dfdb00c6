"""Checkout Sessions in `payment` and `setup` mode (docs.stripe.com/api/checkout/sessions)
and their hosted page, `{base}/hosted/checkout/{id}`.

The page is a plain HTML form (no JavaScript) where a person types a test card. In
setup mode the session's SetupIntent (made with the session, as on Stripe) is
confirmed with it; in payment mode a PaymentIntent is made on the first attempt (the
API has created it lazily since 2022-08-01) and reused on retries. Completion emits
what the intent emits plus `checkout.session.completed`, and redirects (303) to
`success_url` with `{CHECKOUT_SESSION_ID}` replaced. A declined card leaves the
session open and shows Stripe's decline message. Sessions expire at `expires_at`
(checked whenever one is read) or by `POST .../expire`, canceling their intent.

Not modelled: subscription mode, discounts and promotion codes, shipping, Stripe
Tax, post-purchase invoices, embedded/custom UI modes, payment method types other
than card.
"""

from __future__ import annotations

import html
from decimal import Decimal

import stripe

from ..core import Response, apply_update, metadata_from, paginate, random_token, route
from ..errors import StripeError, invalid_request, parameter_missing
from ..schema import shape
from .billing_items import _inline_price as inline_price
from .customers import create as create_customer
from .hosted import card_fields, card_from_form, page
from .payments import INTENT_FIELDS, check_types, confirm, new_payment_intent
from .billing_common import base_url, round_half_up
from .payments_common import MINIMUM_CHARGE, act_as_owner, format_amount, internal
from .payments_setup import confirm_setup, new_setup_intent

DEFAULT_LIFETIME = 24 * 3600
MIN_LIFETIME = 30 * 60
_NOT_MODELLED = ("discounts", "shipping_address_collection", "shipping_options", "subscription_data",
                 "customer_account", "optional_items", "payment_method_data")


def _line_items(ctx, params: dict, currency: str | None) -> tuple[list[dict], str]:
    items, currency_seen = [], currency
    for i, li in enumerate(params.get("line_items") or []):
        p = f"line_items[{i}]"
        if ("price" in li) == ("price_data" in li):
            raise invalid_request(f"You must specify exactly one of `price` or `price_data` in {p}.", param=p)
        if "quantity" not in li:
            raise invalid_request(f"Quantity is required. Add `quantity` to `{p}`", param=f"{p}[quantity]")
        if "price" in li:
            price = ctx.get("price", li["price"], param=f"{p}[price]")
            if not price["active"]:
                raise invalid_request("The price specified is inactive. This field only accepts active prices.",
                                      param=f"{p}[price]")
        else:
            if "recurring" in li["price_data"]:
                raise invalid_request(
                    "You specified `payment` mode but passed a recurring price. Either switch to "
                    "`subscription` mode or use only one-time prices.", param=f"{p}[price_data][recurring]",
                )
            # The archived Price (and Product) Stripe makes for inline price data, as for
            # invoice items.
            price = inline_price(ctx, li["price_data"], f"{p}[price_data]")
        if price["type"] == "recurring":
            raise invalid_request(
                "You specified `payment` mode but passed a recurring price. Either switch to `subscription` "
                "mode or use only one-time prices.", param=f"{p}[price]",
            )
        cur = currency_seen or price["currency"]
        unit = _unit_amount(price, cur, p)
        if currency_seen and cur != currency_seen:
            raise invalid_request("All line items must have the same currency.", param=p)
        currency_seen = cur
        amount = round_half_up(unit * li["quantity"])
        product = ctx.find(price["product"], "product") or {}
        items.append(shape(
            "item",
            id="li_" + random_token(24),
            amount_discount=0,
            amount_subtotal=amount,
            amount_tax=0,
            amount_total=amount,
            currency=cur,
            description=product.get("name"),
            discounts=[],
            metadata=li.get("metadata") or {},
            price=price,
            quantity=li["quantity"],
            taxes=[],
        ))
    return items, currency_seen


def _unit_amount(price: dict, currency: str, p: str) -> Decimal:
    if price["billing_scheme"] != "per_unit" or price["custom_unit_amount"]:
        raise invalid_request("stripe_sandbox models per-unit prices with a fixed amount in Checkout.",
                              param=f"{p}[price]")
    if currency == price["currency"]:
        return Decimal(price["unit_amount_decimal"])
    option = (price["currency_options"] or {}).get(currency)
    if not option or option.get("unit_amount") is None:
        raise invalid_request(f"The price {price['id']} has no currency option for {currency}.",
                              param=f"{p}[price]")
    return Decimal(option["unit_amount"])


@route("POST", "/v1/checkout/sessions", params=stripe.params.checkout.SessionCreateParams)
def create(ctx, params):
    mode = params.get("mode")
    if mode is None:
        raise parameter_missing("mode")
    if mode not in ("payment", "setup"):
        raise invalid_request(f"stripe_sandbox models Checkout in payment and setup mode only, not {mode}.",
                              param="mode")
    for name in _NOT_MODELLED:
        if params.get(name):
            raise invalid_request(f"stripe_sandbox does not model `{name}` on Checkout Sessions.", param=name)
    if (params.get("invoice_creation") or {}).get("enabled") or (params.get("automatic_tax") or {}).get("enabled"):
        raise invalid_request("stripe_sandbox does not model post-purchase invoices or Stripe Tax in Checkout.")
    if params.get("ui_mode", "hosted_page") != "hosted_page":
        raise invalid_request("stripe_sandbox serves the hosted Checkout page only (ui_mode=hosted_page).",
                              param="ui_mode")
    check_types(params)
    check_types(params.get("payment_intent_data") or {})
    if "customer" in params and "customer_email" in params:
        raise invalid_request("You may only specify one of these parameters: customer, customer_email.",
                              code="parameters_exclusive")
    customer = params.get("customer")
    if customer is not None:
        ctx.get("customer", customer, param="customer")
    currency = params["currency"].lower() if params.get("currency") else None
    now = ctx.now()
    expires_at = params.get("expires_at", now + DEFAULT_LIFETIME)
    if not now + MIN_LIFETIME <= expires_at <= now + DEFAULT_LIFETIME:
        raise invalid_request("The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                              "Checkout Session creation.", param="expires_at")
    if mode == "payment":
        if not params.get("line_items"):
            raise invalid_request("`line_items` is required in `payment` mode.", param="line_items")
        if "setup_intent_data" in params:
            raise invalid_request("`setup_intent_data` can only be used in `setup` mode.",
                                  param="setup_intent_data")
        items, currency = _line_items(ctx, params, currency)
        total = sum(i["amount_total"] for i in items)
        minimum = MINIMUM_CHARGE.get(currency)
        if minimum is not None and total < minimum:
            raise invalid_request(
                f"The Checkout Session's total amount due must add up to at least "
                f"{format_amount(minimum, currency)} {currency}", param="line_items",
            )
    else:
        if params.get("line_items"):
            raise invalid_request("You cannot pass `line_items` in `setup` mode.", param="line_items")
        if "payment_intent_data" in params:
            raise invalid_request("`payment_intent_data` can only be used in `payment` mode.",
                                  param="payment_intent_data")
        if currency is None and not params.get("payment_method_types"):
            raise invalid_request("`currency` is required in `setup` mode when `payment_method_types` is not "
                                  "set.", param="currency")
        items, total = [], None
    sid = ctx.new_id("cs_test", 58)
    session = shape(
        "checkout.session",
        id=sid,
        allow_promotion_codes=params.get("allow_promotion_codes"),
        amount_subtotal=total,
        amount_total=total,
        automatic_tax={"enabled": False, "liability": None, "provider": None, "status": None},
        billing_address_collection=params.get("billing_address_collection"),
        cancel_url=params.get("cancel_url"),
        client_reference_id=params.get("client_reference_id"),
        created=now,
        currency=currency,
        custom_text={"after_submit": None, "shipping_address": None, "submit": None,
                     "terms_of_service_acceptance": None},
        customer=customer,
        customer_creation=None if customer else params.get("customer_creation", "if_required"),
        customer_email=params.get("customer_email"),
        expires_at=expires_at,
        invoice_creation={"enabled": False, "invoice_data": {"metadata": {}}} if mode == "payment" else None,
        line_items={"object": "list", "data": items, "has_more": False,
                    "url": f"/v1/checkout/sessions/{sid}/line_items"},
        livemode=False,
        locale=params.get("locale"),
        metadata=metadata_from(params),
        mode=mode,
        payment_method_collection="always",
        payment_method_options={"card": {"request_three_d_secure": "automatic"}},
        payment_method_types=params.get("payment_method_types") or ["card"],
        payment_status="unpaid" if mode == "payment" else "no_payment_required",
        phone_number_collection={"enabled": False},
        status="open",
        submit_type=params.get("submit_type"),
        success_url=params.get("success_url"),
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
        if mode == "payment" else None,
        ui_mode="hosted_page",
        url=f"{base_url(ctx)}/hosted/checkout/{sid}",
    )
    if mode == "setup":
        data = params.get("setup_intent_data") or {}
        si = new_setup_intent(ctx, customer=customer, metadata=metadata_from(data),
                              payment_method_types=session["payment_method_types"],
                              **{k: data[k] for k in ("description", "on_behalf_of") if k in data})
        session["setup_intent"] = si["id"]
    ctx.insert(session)
    if mode == "payment":
        internal(ctx, sid)["payment_intent_data"] = params.get("payment_intent_data") or {}
    return session


def _expire(ctx, session: dict) -> None:
    intent_id = session["payment_intent"] or session["setup_intent"]
    kind = "payment_intent" if session["payment_intent"] else "setup_intent"
    intent = ctx.get(kind, intent_id) if intent_id else None
    if intent is not None and intent["status"] not in ("succeeded", "canceled"):
        intent.update(status="canceled", cancellation_reason="abandoned")
        if intent["object"] == "payment_intent":
            intent["canceled_at"] = ctx.now()
        ctx.save(intent)
        ctx.emit(f"{intent['object']}.canceled", intent)
    session.update(status="expired", url=None)
    ctx.save(session)
    ctx.emit("checkout.session.expired", session)


def _current(ctx, session: dict) -> dict:
    """The session, expired first if its time has come (Stripe expires sessions in
    the background; the sandbox does it when a session is next read)."""
    if session["status"] == "open" and ctx.now() >= session["expires_at"]:
        session = ctx.get("checkout.session", session["id"])
        _expire(ctx, session)
    return session


@route("GET", "/v1/checkout/sessions/{session}", params=stripe.params.checkout.SessionRetrieveParams)
def retrieve(ctx, params, session):
    return _current(ctx, ctx.get("checkout.session", session))


@route("POST", "/v1/checkout/sessions/{session}", params=stripe.params.checkout.SessionUpdateParams)
def update(ctx, params, session):
    obj = _current(ctx, ctx.get("checkout.session", session))
    for name in params:
        if name not in ("metadata", "expand"):
            raise invalid_request(f"stripe_sandbox updates a Checkout Session's metadata only, not `{name}`.",
                                  param=name)
    apply_update(obj, params, ("metadata",))
    ctx.save(obj)
    return obj


@route("POST", "/v1/checkout/sessions/{session}/expire", params=stripe.params.checkout.SessionExpireParams)
def expire(ctx, params, session):
    obj = _current(ctx, ctx.get("checkout.session", session))
    if obj["status"] != "open":
        raise invalid_request(
            f"This Checkout Session has a status of {obj['status']}. Only Checkout Sessions with a status "
            "of `open` can be expired."
        )
    _expire(ctx, obj)
    return obj


@route("GET", "/v1/checkout/sessions", params=stripe.params.checkout.SessionListParams)
def list_(ctx, params):
    for name in ("payment_link", "subscription", "customer_account"):
        if name in params:
            return {"object": "list", "data": [], "has_more": False, "url": "/v1/checkout/sessions"}
    checks = [(k, params[k]) for k in ("customer", "payment_intent", "status") if k in params]
    email = (params.get("customer_details") or {}).get("email")

    def where(s):
        s = _current(ctx, s)
        return all(s.get(k) == v for k, v in checks) and (
            email is None or (s["customer_details"] or {}).get("email") == email)

    return ctx.list("checkout.session", params, url="/v1/checkout/sessions", where=where)


@route("GET", "/v1/checkout/sessions/{session}/line_items",
       params=stripe.params.checkout.SessionLineItemListParams)
def list_line_items(ctx, params, session):
    obj = ctx.get("checkout.session", session)
    return paginate(obj["line_items"]["data"], params, url=f"/v1/checkout/sessions/{session}/line_items",
                    object_name="item")


# ---------------------------------------------------------------- hosted page


def _summary(session: dict) -> str:
    if session["mode"] == "setup":
        return "<p id=summary>Save a card for future payments.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(i['description'] or '')}</td><td class=num>{i['quantity']}</td>"
        f"<td class=num>{format_amount(i['amount_total'], i['currency'])}</td></tr>"
        for i in session["line_items"]["data"]
    )
    total = format_amount(session["amount_total"], session["currency"])
    return (f"<table id=lines><tr><th>Item</th><th class=num>Qty</th><th class=num>Amount</th></tr>{rows}"
            f"<tr class=total><td colspan=2>Total</td><td class=num id=total>{total}</td></tr></table>")


def _render(ctx, session: dict, *, error: str | None = None, values: dict | None = None,
            status: int = 200) -> Response:
    account = ctx.store.objects.get(ctx.account) or {}
    merchant = html.escape((account.get("business_profile") or {}).get("name") or "Sandbox merchant")
    if session["status"] != "open":
        note = ("This Checkout Session is no longer available." if session["status"] == "expired"
                else "Thanks! This Checkout Session is complete.")
        return page("Checkout", f"<h1>{merchant}</h1><p id=state>{note}</p>",
                    410 if session["status"] == "expired" else 200)
    customer = ctx.find(session["customer"], "customer") if session["customer"] else None
    email = (values or {}).get("email") or session["customer_email"] or (customer or {}).get("email") or ""
    label = ("Save card" if session["mode"] == "setup"
             else f"Pay {format_amount(session['amount_total'], session['currency'])}")
    cancel = (f'<p><a id=cancel href="{html.escape(session["cancel_url"])}">Cancel</a></p>'
              if session["cancel_url"] else "")
    body = f"""<h1>{merchant}</h1>{_summary(session)}
<form method=post action="/hosted/checkout/{session['id']}">
<label>Email <input type=email name=email value="{html.escape(email)}"></label>
{card_fields(values, error)}
<button type=submit id=submit>{html.escape(label)}</button></form>{cancel}"""
    return page("Checkout", body, status)


def _session_for_page(ctx, session_id: str) -> dict | None:
    obj = act_as_owner(ctx, session_id)
    if obj is None or obj.get("object") != "checkout.session":
        return None
    return _current(ctx, ctx.get("checkout.session", session_id))


@route("GET", "/hosted/checkout/{session}", auth="public")
def hosted_page(ctx, params, session):
    obj = _session_for_page(ctx, session)
    if obj is None:
        return page("Checkout", "<p id=state>This Checkout Session does not exist.</p>", 404)
    return _render(ctx, obj)


@route("POST", "/hosted/checkout/{session}", auth="public")
def hosted_submit(ctx, form, session):
    obj = _session_for_page(ctx, session)
    if obj is None:
        return page("Checkout", "<p id=state>This Checkout Session does not exist.</p>", 404)
    if obj["status"] != "open":
        return _render(ctx, obj)
    try:
        pm = card_from_form(ctx, form)
        customer = obj["customer"] or _new_customer(ctx, obj, form)
        _complete(ctx, obj, pm, customer)
    except StripeError as exc:
        if exc.type != "card_error":
            raise
        # Shown on the page; a recorded decline (the failed intent) is kept.
        return _render(ctx, obj, error=exc.message, values=form, status=exc.status)
    obj.update(
        status="complete",
        payment_status="paid" if obj["mode"] == "payment" else "no_payment_required",
        customer=customer,
        customer_details={"address": pm["billing_details"]["address"], "email": form.get("email") or None,
                          "name": form.get("name") or None, "phone": None, "tax_exempt": "none",
                          "tax_ids": []},
        url=None,
    )
    obj.update(shape("checkout.session", **obj))
    ctx.save(obj)
    ctx.emit("checkout.session.completed", obj)
    if obj["success_url"]:
        return Response(303, b"", {"Location": obj["success_url"].replace("{CHECKOUT_SESSION_ID}", obj["id"])})
    return _render(ctx, obj)


def _new_customer(ctx, session: dict, form: dict) -> str | None:
    """The customer Checkout makes with `customer_creation=always`, once per session
    (a declined first attempt keeps it for the next)."""
    if session["customer_creation"] != "always":
        return None
    state = internal(ctx, session["id"])
    if "customer" not in state:
        state["customer"] = create_customer(ctx, {"email": form.get("email") or None,
                                                  "name": form.get("name") or None})["id"]
    return state["customer"]


def _complete(ctx, session: dict, pm: dict, customer: str | None) -> dict:
    """Confirm the session's intent with the card typed in (card errors propagate)."""
    if session["mode"] == "setup":
        si = ctx.get("setup_intent", session["setup_intent"])
        if si["customer"] is None and customer:
            si["customer"] = customer
        return confirm_setup(ctx, si, pm)
    pi = ctx.get("payment_intent", session["payment_intent"]) if session["payment_intent"] else None
    if pi is None:
        data = internal(ctx, session["id"])["payment_intent_data"]
        fields = {k: data[k] for k in INTENT_FIELDS if k in data}
        pi = new_payment_intent(ctx, amount=session["amount_total"], currency=session["currency"],
                                customer=customer, metadata=metadata_from(data),
                                payment_method_types=session["payment_method_types"], **fields)
        session["payment_intent"] = pi["id"]
        ctx.save(session)
    elif customer and pi["customer"] is None:
        pi["customer"] = customer
    pi["payment_method"] = pm["id"]
    # The sandbox's Checkout page has no 3-D Secure step: such cards are declined
    # `authentication_required`, as off-session payments are.
    return confirm(ctx, pi, pm, off_session=True)[0]
