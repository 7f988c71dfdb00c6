"""Payment methods (docs.stripe.com/api/payment_methods) and Stripe's test cards
(docs.stripe.com/testing).

Test mode accepts only Stripe's test card numbers: another number that passes the
Luhn check is declined with `test_mode_live_card`, as on Stripe. The test
PaymentMethod ids (`pm_card_visa`, `pm_card_chargeDeclined`, ...) and card tokens
(`tok_visa`, ...) work wherever Stripe takes them: each use makes a new `pm_...`.
Decline cards fail when attached to a customer (Stripe verifies the card then),
except `4000000000000341` / `pm_card_chargeCustomerFail`, which attaches and fails
when charged. Some cards succeed and something happens later: `pm_card_refundFail`
(its refunds fail an hour later, payments_charges), `pm_card_createDispute`,
`pm_card_createDisputeProductNotReceived`, `pm_card_createDisputeInquiry` (a dispute
opens right after the charge, payments_disputes), `pm_card_threeDSecure2Required`
(authentication first, payments_3ds). Only `type=card` is modelled here.
"""

from __future__ import annotations

import time

import stripe

from ..core import apply_update, copy_json, metadata_from, route
from ..errors import StripeError, card_error, invalid_request, parameter_missing
from ..schema import shape
from .payments_common import fingerprint, internal

# number -> (brand, funding, country, behaviour); behaviour None succeeds.
CARDS = {
    "4242424242424242": ("visa", "credit", "US", None),
    "4000056655665556": ("visa", "debit", "US", None),
    "5555555555554444": ("mastercard", "credit", "US", None),
    "2223003122003222": ("mastercard", "credit", "US", None),
    "5200828282828210": ("mastercard", "debit", "US", None),
    "5105105105105100": ("mastercard", "prepaid", "US", None),
    "378282246310005": ("amex", "credit", "US", None),
    "371449635398431": ("amex", "credit", "US", None),
    "6011111111111117": ("discover", "credit", "US", None),
    "6011000990139424": ("discover", "credit", "US", None),
    "6011981111111113": ("discover", "debit", "US", None),
    "3056930009020004": ("diners", "credit", "US", None),
    "36227206271667": ("diners", "credit", "US", None),
    "3566002020360505": ("jcb", "credit", "JP", None),
    "6200000000000005": ("unionpay", "credit", "CN", None),
    "4000008260000000": ("visa", "credit", "GB", None),
    "4000058260000005": ("visa", "debit", "GB", None),
    "4000002760000016": ("visa", "credit", "DE", None),
    "4000002500000003": ("visa", "credit", "FR", None),
    "4000003920000003": ("visa", "credit", "JP", None),
    "4000001240000000": ("visa", "credit", "CA", None),
    "4000000000000077": ("visa", "credit", "US", None),
    "4000000000000002": ("visa", "credit", "US", "generic_decline"),
    "4000000000009995": ("visa", "credit", "US", "insufficient_funds"),
    "4000000000009987": ("visa", "credit", "US", "lost_card"),
    "4000000000009979": ("visa", "credit", "US", "stolen_card"),
    "4000000000000069": ("visa", "credit", "US", "expired_card"),
    "4000000000000127": ("visa", "credit", "US", "incorrect_cvc"),
    "4000000000000119": ("visa", "credit", "US", "processing_error"),
    "4000000000006975": ("visa", "credit", "US", "card_velocity_exceeded"),
    "4100000000000019": ("visa", "credit", "US", "fraudulent"),
    "4000000000000341": ("visa", "credit", "US", "charge_customer_fail"),
    # Charges that succeed, then something happens later (docs.stripe.com/testing).
    "4000000000005126": ("visa", "credit", "US", "refund_fail"),
    "4000000000000259": ("visa", "credit", "US", "dispute_fraudulent"),
    "4000000000002685": ("visa", "credit", "US", "dispute_product_not_received"),
    "4000000000001976": ("visa", "credit", "US", "dispute_inquiry"),
    # 3-D Secure: the customer must authenticate the payment first (payments_3ds).
    "4000000000003220": ("visa", "credit", "US", "three_d_secure_required"),
    "4000000000003063": ("visa", "credit", "US", "three_d_secure_required"),
}

# Suffixes of Stripe's test ids: `pm_card_<x>` and `tok_<x>`.
ALIASES = {
    "visa": "4242424242424242",
    "visa_debit": "4000056655665556",
    "mastercard": "5555555555554444",
    "mastercard_debit": "5200828282828210",
    "mastercard_prepaid": "5105105105105100",
    "amex": "371449635398431",
    "discover": "6011111111111117",
    "diners": "3056930009020004",
    "jcb": "3566002020360505",
    "unionpay": "6200000000000005",
    "gb": "4000008260000000",
    "de": "4000002760000016",
    "fr": "4000002500000003",
    "jp": "4000003920000003",
    "ca": "4000001240000000",
    "bypassPending": "4000000000000077",
    "chargeDeclined": "4000000000000002",
    "visa_chargeDeclined": "4000000000000002",
    "chargeDeclinedInsufficientFunds": "4000000000009995",
    "visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "chargeDeclinedLostCard": "4000000000009987",
    "visa_chargeDeclinedLostCard": "4000000000009987",
    "chargeDeclinedStolenCard": "4000000000009979",
    "visa_chargeDeclinedStolenCard": "4000000000009979",
    "chargeDeclinedExpiredCard": "4000000000000069",
    "chargeDeclinedIncorrectCvc": "4000000000000127",
    "chargeDeclinedProcessingError": "4000000000000119",
    "visa_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
    "chargeDeclinedFraudulent": "4100000000000019",
    "radarBlock": "4100000000000019",
    "chargeCustomerFail": "4000000000000341",
    "refundFail": "4000000000005126",
    "createDispute": "4000000000000259",
    "createDisputeProductNotReceived": "4000000000002685",
    "createDisputeInquiry": "4000000000001976",
    "threeDSecure2Required": "4000000000003220",
    "threeDSecureRequired": "4000000000003063",
}

# Behaviours of cards whose charge goes through (something else happens later).
SUCCEEDING = frozenset({"refund_fail", "dispute_fraudulent", "dispute_product_not_received", "dispute_inquiry",
                        "three_d_secure_required"})

_DISPLAY_BRAND = {"amex": "american_express", "diners": "diners_club", "unionpay": "union_pay"}

# behaviour -> how Stripe reports it (docs.stripe.com/declines/codes, /testing).
DECLINES = {
    "generic_decline": ("card_declined", "Your card was declined.", None),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds.", None),
    "lost_card": ("card_declined", "Your card was declined.", None),
    "stolen_card": ("card_declined", "Your card was declined.", None),
    "expired_card": ("expired_card", "Your card has expired.", "exp_month"),
    "incorrect_cvc": ("incorrect_cvc", "Your card's security code is incorrect.", "cvc"),
    "processing_error": (
        "processing_error", "An error occurred while processing your card. Try again in a little bit.", None,
    ),
    "card_velocity_exceeded": (
        "card_declined",
        "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
        None,
    ),
    "fraudulent": ("card_declined", "Your card was declined.", None),
    "authentication_required": (
        "authentication_required", "Your card was declined. This transaction requires authentication.", None,
    ),
    "test_mode_live_card": (
        "card_declined",
        "Your card was declined. Your request was in test mode, but used a non test (live) card. "
        "For a list of valid test cards, visit: https://stripe.com/docs/testing.",
        None,
    ),
}


def decline_of(behaviour: str | None, *, charging: bool) -> str | None:
    """The decline code a card with `behaviour` gets, or None if it goes through."""
    if behaviour == "charge_customer_fail":
        return "generic_decline" if charging else None
    if behaviour in SUCCEEDING:
        return None
    return behaviour


def decline_error(decline_code: str, **extra) -> StripeError:
    code, message, param = DECLINES[decline_code]
    return card_error(message, code=code, decline_code=decline_code, param=param, **extra)


def error_details(error: StripeError, decline_code: str, pm: dict, **ids) -> dict:
    """`last_payment_error` / `last_setup_error` for a declined card."""
    return {
        "code": error.code, "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{error.code.replace('_', '-')}",
        "message": error.message, "param": error.param, "payment_method": copy_json(pm),
        "payment_method_type": "card", "type": "card_error", **ids,
    }


def outcome(decline_code: str | None) -> dict:
    """A charge's `outcome` for a card that went through or was declined."""
    if decline_code is None:
        return {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "risk_score": 12, "seller_message": "Payment complete.", "type": "authorized"}
    if decline_code == "fraudulent":
        return {"network_status": "not_sent_to_network", "reason": "highest_risk_level",
                "risk_level": "highest", "risk_score": 95,
                "seller_message": "Stripe blocked this payment as too risky.", "type": "blocked"}
    seller = ("The bank did not return any further details with this decline."
              if decline_code == "generic_decline"
              else f"The bank returned the decline code `{decline_code}`.")
    return {"network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal",
            "risk_score": 12, "seller_message": seller, "type": "issuer_declined"}


# ------------------------------------------------------------- card numbers


def _luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def check_expiry(exp_month, exp_year, now_year: int, now_month: int, *, prefix: str = "card") -> tuple[int, int]:
    """(month, four-digit year) of a valid, unexpired card."""
    if exp_month is None:
        raise parameter_missing(f"{prefix}[exp_month]")
    if exp_year is None:
        raise parameter_missing(f"{prefix}[exp_year]")
    month, year = int(exp_month), int(exp_year)
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise card_error("Your card's expiration month is invalid.", code="invalid_expiry_month",
                         param=f"{prefix}[exp_month]")
    if year < now_year or year > now_year + 50:
        raise card_error("Your card's expiration year is invalid.", code="invalid_expiry_year",
                         param=f"{prefix}[exp_year]")
    if year == now_year and month < now_month:
        raise card_error("Your card's expiration month is invalid.", code="invalid_expiry_month",
                         param=f"{prefix}[exp_month]")
    return month, year


def check_card(ctx, number: str, exp_month, exp_year, cvc, *, prefix: str = "card") -> tuple[str, int, int]:
    """Validate card data as Stripe does when it tokenizes: (digits, month, year)."""
    digits = "".join(number.split()).replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn_ok(digits):
        raise card_error("Your card number is incorrect.", code="incorrect_number", param=f"{prefix}[number]")
    month, year = check_expiry(exp_month, exp_year, *now_year_month(ctx), prefix=prefix)
    if cvc not in (None, "") and not (str(cvc).isdigit() and 3 <= len(str(cvc)) <= 4):
        raise card_error("Your card's security code is invalid.", code="invalid_cvc", param=f"{prefix}[cvc]")
    if digits not in CARDS:
        raise decline_error("test_mode_live_card")
    return digits, month, year


def now_year_month(ctx) -> tuple[int, int]:
    t = time.gmtime(ctx.now())
    return t.tm_year, t.tm_mon


# ----------------------------------------------------------- payment methods


def new_card_payment_method(ctx, number: str, *, exp_month: int | None = None, exp_year: int | None = None,
                            cvc: str | None = None, billing_details: dict | None = None,
                            metadata: dict | None = None, allow_redisplay: str = "unspecified") -> dict:
    """Store a card PaymentMethod for a test number (already validated)."""
    brand, funding, country, behaviour = CARDS[number]
    year, month = now_year_month(ctx)
    details = dict(billing_details or {})
    details.setdefault("address", {})
    pm = shape(
        "payment_method",
        id=ctx.new_id("pm"),
        allow_redisplay=allow_redisplay,
        billing_details=details,
        card={
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None,
                       "cvc_check": "unchecked" if cvc else None},
            "country": country,
            "display_brand": _DISPLAY_BRAND.get(brand, brand),
            # Stripe's test ids carry an expiry a year ahead.
            "exp_month": exp_month or month,
            "exp_year": exp_year or year + 1,
            "fingerprint": fingerprint(ctx, number),
            "funding": funding,
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
        },
        created=ctx.now(),
        customer=None,
        livemode=False,
        metadata=metadata or {},
        type="card",
    )
    ctx.insert(pm)
    internal(ctx, pm["id"])["behaviour"] = behaviour
    return pm


def behaviour_of(ctx, pm: dict) -> str | None:
    return internal(ctx, pm["id"], create=False).get("behaviour")


def alias_number(value: str, prefix: str) -> str | None:
    """The card number behind a test id (`pm_card_<x>`, `tok_<x>`), else None."""
    return ALIASES.get(value[len(prefix):]) if value.startswith(prefix) else None


def resolve_payment_method(ctx, value: str, *, param: str = "payment_method") -> dict:
    """A stored PaymentMethod, or a new one for Stripe's test ids."""
    number = alias_number(value, "pm_card_")
    if number is not None:
        return new_card_payment_method(ctx, number)
    return ctx.get("payment_method", value, param=param)


def attach(ctx, pm: dict, customer_id: str) -> dict:
    """Attach `pm` to a customer: Stripe verifies the card first, so decline cards
    fail here (402) and nothing changes."""
    if pm["customer"] == customer_id:
        return pm
    if pm["customer"] is not None:
        raise invalid_request("The payment method you provided has already been attached to a customer.")
    decline = decline_of(behaviour_of(ctx, pm), charging=False)
    if decline:
        raise decline_error(decline)
    pm["customer"] = customer_id
    ctx.save(pm)
    ctx.emit("payment_method.attached", pm)
    return pm


def detach(ctx, pm: dict) -> dict:
    """Detach `pm` from its customer, which stops using it as its default."""
    customer_id = pm["customer"]
    if customer_id is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment is impossible."
        )
    pm["customer"] = None
    ctx.save(pm)
    customer = ctx.find(customer_id, "customer")
    settings = (customer or {}).get("invoice_settings") or {}
    if settings.get("default_payment_method") == pm["id"]:
        # A detached card can no longer be the customer's default.
        customer = ctx.get("customer", customer_id)
        customer["invoice_settings"]["default_payment_method"] = None
        ctx.save(customer)
        ctx.emit("customer.updated", customer, {"invoice_settings": {"default_payment_method": pm["id"]}})
    ctx.emit("payment_method.detached", pm, {"customer": customer_id})
    return pm


# ------------------------------------------------------------------- routes


@route("POST", "/v1/payment_methods", params=stripe.params.PaymentMethodCreateParams)
def create(ctx, params):
    if "payment_method" in params or "customer" in params:
        raise invalid_request(
            "stripe_sandbox does not model sharing payment methods with connected accounts "
            "(payment_method/customer on create).",
        )
    kind = params.get("type")
    if kind is None:
        raise parameter_missing("type")
    if kind in ("us_bank_account", "sepa_debit"):
        from .payments_bank import new_bank_payment_method  # it builds on payments_charges, which imports us

        return new_bank_payment_method(ctx, params)
    if kind != "card":
        raise invalid_request(f"stripe_sandbox models card, us_bank_account and sepa_debit payment methods "
                              f"only, not {kind!r}.", param="type")
    card = params.get("card")
    if not card:
        raise parameter_missing("card")
    if "token" in card:
        number = alias_number(card["token"], "tok_")
        if number is None:
            raise invalid_request(f"No such token: '{card['token']}'", param="card[token]",
                                  code="resource_missing")
        exp_month = exp_year = None
    else:
        if "number" not in card:
            raise parameter_missing("card[number]")
        number, exp_month, exp_year = check_card(
            ctx, card["number"], card.get("exp_month"), card.get("exp_year"), card.get("cvc"))
    return new_card_payment_method(
        ctx, number, exp_month=exp_month, exp_year=exp_year, cvc=card.get("cvc"),
        billing_details=params.get("billing_details"), metadata=metadata_from(params),
        allow_redisplay=params.get("allow_redisplay", "unspecified"),
    )


@route("GET", "/v1/payment_methods/{payment_method}", params=stripe.params.PaymentMethodRetrieveParams)
def retrieve(ctx, params, payment_method):
    return ctx.get("payment_method", payment_method)


@route("POST", "/v1/payment_methods/{payment_method}", params=stripe.params.PaymentMethodUpdateParams)
def update(ctx, params, payment_method):
    pm = ctx.get("payment_method", payment_method)
    if pm["customer"] is None:
        raise invalid_request("You must save this PaymentMethod to a customer before you can update it.")
    card = params.get("card") or {}
    if "exp_month" in card or "exp_year" in card:
        month, year = check_expiry(card.get("exp_month", pm["card"]["exp_month"]),
                                   card.get("exp_year", pm["card"]["exp_year"]), *now_year_month(ctx))
        params = dict(params, card={"exp_month": month, "exp_year": year})
    elif "card" in params:
        params = {k: v for k, v in params.items() if k != "card"}
    previous = apply_update(pm, params, ("allow_redisplay", "billing_details", "card", "metadata"))
    if previous:
        ctx.save(pm)
        ctx.emit("payment_method.updated", pm, previous)
    return pm


@route("POST", "/v1/payment_methods/{payment_method}/attach", params=stripe.params.PaymentMethodAttachParams)
def attach_route(ctx, params, payment_method):
    if "customer_account" in params:
        raise invalid_request("stripe_sandbox does not model customer_account; pass customer.",
                              param="customer_account")
    if "customer" not in params:
        raise parameter_missing("customer")
    customer = ctx.get("customer", params["customer"], param="customer")
    # A declined test id leaves nothing behind: the failed request is rolled back.
    pm = resolve_payment_method(ctx, payment_method, param="id")
    return attach(ctx, pm, customer["id"])


@route("POST", "/v1/payment_methods/{payment_method}/detach", params=stripe.params.PaymentMethodDetachParams)
def detach_route(ctx, params, payment_method):
    return detach(ctx, ctx.get("payment_method", payment_method))


def _list(ctx, params, customer_id, url):
    kind = params.get("type")
    redisplay = params.get("allow_redisplay")

    def where(pm):
        return (
            (customer_id is None or pm["customer"] == customer_id)
            and (kind is None or pm["type"] == kind)
            and (redisplay is None or pm["allow_redisplay"] == redisplay)
        )

    return ctx.list("payment_method", params, url=url, where=where)


@route("GET", "/v1/payment_methods", params=stripe.params.PaymentMethodListParams)
def list_(ctx, params):
    customer = params.get("customer")
    if customer is not None:
        ctx.get("customer", customer, param="customer")
    return _list(ctx, params, customer, "/v1/payment_methods")


@route("GET", "/v1/customers/{customer}/payment_methods", params=stripe.params.CustomerListPaymentMethodsParams)
def list_for_customer(ctx, params, customer):
    ctx.get("customer", customer)
    return _list(ctx, params, customer, f"/v1/customers/{customer}/payment_methods")


@route("GET", "/v1/customers/{customer}/payment_methods/{payment_method}",
       params=stripe.params.CustomerRetrievePaymentMethodParams)
def retrieve_for_customer(ctx, params, customer, payment_method):
    ctx.get("customer", customer)
    pm = ctx.get("payment_method", payment_method)
    if pm["customer"] != customer:
        raise invalid_request(
            f"The payment method {payment_method} does not belong to the customer {customer}.",
            code="resource_missing",
        )
    return pm
