"""Tax rates (docs.stripe.com/api/tax_rates), coupons (/api/coupons) and the
discount objects (`di_...`) that applying a coupon to an invoice or an invoice
item creates.

Stripe's rules kept here: a tax rate's `percentage` and `inclusive` never change
(the update params lack them: unknown parameters); an archived rate still works
where it is already set but cannot be applied anew. A coupon has `percent_off` or
`amount_off` + `currency`, and only `name`, `metadata` and `currency_options`
change afterwards; `max_redemptions` and `redeem_by` end its validity. Deleting a
coupon leaves the discounts made from it working, so a discount keeps a copy of
its coupon's terms (internal `_coupon`).
"""

from __future__ import annotations

import stripe

from ..core import metadata_from, random_token, route
from ..errors import StripeError, invalid_request, resource_missing
from ..schema import shape
from .billing_common import answer, check_currency, dec, emit, update_fields

MAX_TAX_RATES = 5  # "You can add up to five tax rates to each line item" (and per invoice)


# ------------------------------------------------------------------ tax rates


@route("POST", "/v1/tax_rates", params=stripe.params.TaxRateCreateParams)
def create_tax_rate(ctx, params):
    pct = dec(params["percentage"])
    if pct < 0 or pct > 100:
        raise invalid_request("Invalid percentage: must be between 0 and 100.", param="percentage")
    if pct.as_tuple().exponent < -4:
        raise invalid_request("Invalid percentage: at most 4 decimal places are allowed.", param="percentage")
    rate = shape(
        "tax_rate",
        id=ctx.new_id("txr"),
        active=params.get("active", True),
        country=params.get("country"),
        created=ctx.now(),
        description=params.get("description"),
        display_name=params["display_name"],
        effective_percentage=params["percentage"],
        inclusive=params["inclusive"],
        jurisdiction=params.get("jurisdiction"),
        livemode=False,
        metadata=metadata_from(params),
        percentage=params["percentage"],
        rate_type="percentage",
        state=params.get("state"),
        tax_type=params.get("tax_type"),
    )
    ctx.insert(rate)
    emit(ctx, "tax_rate.created", rate)
    return answer(ctx, rate, params)


@route("GET", "/v1/tax_rates/{tax_rate}", params=stripe.params.TaxRateRetrieveParams)
def retrieve_tax_rate(ctx, params, tax_rate):
    return answer(ctx, ctx.get("tax_rate", tax_rate), params)


@route("POST", "/v1/tax_rates/{tax_rate}", params=stripe.params.TaxRateUpdateParams)
def update_tax_rate(ctx, params, tax_rate):
    rate = ctx.get("tax_rate", tax_rate)
    previous = update_fields(rate, params, ("active", "country", "description", "display_name",
                                             "jurisdiction", "metadata", "state", "tax_type"))
    if previous:
        ctx.save(rate)
        emit(ctx, "tax_rate.updated", rate, previous)
    return answer(ctx, rate, params)


@route("GET", "/v1/tax_rates", params=stripe.params.TaxRateListParams)
def list_tax_rates(ctx, params):
    checks = [(k, params[k]) for k in ("active", "inclusive") if k in params]
    page = ctx.list("tax_rate", params, url="/v1/tax_rates",
                    where=lambda r: all(r[k] == v for k, v in checks))
    return answer(ctx, page, params)


def tax_rates_param(ctx, ids, param: str) -> list[dict]:
    """The tax rate objects for a `tax_rates` / `default_tax_rates` param (embedded,
    as Stripe shows them on invoice items and invoices)."""
    if ids in (None, ""):
        return []
    if len(ids) > MAX_TAX_RATES:
        raise invalid_request(
            f"You can only specify up to {MAX_TAX_RATES} tax rates. You passed in {len(ids)}.", param=param
        )
    if len(set(ids)) != len(ids):
        raise invalid_request("You cannot specify the same tax rate more than once.", param=param)
    out = []
    for i, rid in enumerate(ids):
        rate = ctx.get("tax_rate", rid, param=f"{param}[{i}]")
        if not rate["active"]:
            raise invalid_request(
                f"Tax rate {rid} is archived (active=false) and cannot be applied to new objects.",
                param=f"{param}[{i}]",
            )
        out.append(rate)
    return out


# -------------------------------------------------------------------- coupons


@route("POST", "/v1/coupons", params=stripe.params.CouponCreateParams)
def create_coupon(ctx, params):
    percent, amount = params.get("percent_off"), params.get("amount_off")
    if (percent is None) == (amount is None):
        raise invalid_request(
            "You must pass exactly one of percent_off or amount_off.",
            param="percent_off" if percent is None else "amount_off",
        )
    currency = None
    if percent is not None and not 0 < dec(percent) <= 100:
        raise invalid_request(
            "Invalid percent_off: must be greater than 0 and at most 100.", param="percent_off"
        )
    if amount is not None:
        if amount <= 0:
            raise invalid_request("Invalid positive integer", param="amount_off")
        if "currency" not in params:
            raise invalid_request(
                "You must pass currency when passing amount_off.", param="currency", code="parameter_missing"
            )
        currency = check_currency(params["currency"])
    duration = params.get("duration", "once")
    months = params.get("duration_in_months")
    if duration == "repeating" and not months:
        raise invalid_request(
            "You must pass duration_in_months when duration is repeating.",
            param="duration_in_months", code="parameter_missing",
        )
    if duration != "repeating" and months is not None:
        raise invalid_request(
            "duration_in_months can only be set when duration is repeating.", param="duration_in_months"
        )
    if params.get("max_redemptions") is not None and params["max_redemptions"] <= 0:
        raise invalid_request("Invalid positive integer", param="max_redemptions")
    redeem_by = params.get("redeem_by")
    if redeem_by is not None and redeem_by <= ctx.now():
        raise invalid_request("redeem_by must be in the future.", param="redeem_by")
    cid = params.get("id") or random_token(8)
    if ctx.store.objects.get(cid) is not None:
        raise StripeError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    coupon = shape(
        "coupon",
        id=cid,
        amount_off=amount,
        applies_to={"products": params["applies_to"].get("products", [])} if params.get("applies_to") else None,
        created=ctx.now(),
        currency=currency,
        currency_options=params.get("currency_options"),
        duration=duration,
        duration_in_months=months,
        livemode=False,
        max_redemptions=params.get("max_redemptions"),
        metadata=metadata_from(params),
        name=params.get("name"),
        percent_off=float(percent) if percent is not None else None,
        redeem_by=redeem_by,
        times_redeemed=0,
        valid=True,
    )
    ctx.insert(coupon)
    emit(ctx, "coupon.created", coupon)
    return answer(ctx, coupon, params)


def _is_valid(ctx, coupon: dict) -> bool:
    return not (
        (coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"])
        or (coupon["redeem_by"] is not None and coupon["redeem_by"] <= ctx.now())
    )


def _shown(ctx, coupon: dict) -> dict:
    # `valid` turns false when redeem_by passes, without a write: computed on read.
    return dict(coupon, valid=_is_valid(ctx, coupon))


@route("GET", "/v1/coupons/{coupon}", params=stripe.params.CouponRetrieveParams)
def retrieve_coupon(ctx, params, coupon):
    return answer(ctx, _shown(ctx, ctx.get("coupon", coupon)), params)


@route("POST", "/v1/coupons/{coupon}", params=stripe.params.CouponUpdateParams)
def update_coupon(ctx, params, coupon):
    obj = ctx.get("coupon", coupon)
    previous = update_fields(obj, params, ("currency_options", "metadata", "name"))
    if previous:
        ctx.save(obj)
        emit(ctx, "coupon.updated", _shown(ctx, obj), previous)
    return answer(ctx, _shown(ctx, obj), params)


@route("DELETE", "/v1/coupons/{coupon}", params=stripe.params.CouponDeleteParams)
def delete_coupon(ctx, params, coupon):
    obj = ctx.get("coupon", coupon)
    emit(ctx, "coupon.deleted", obj)
    return answer(ctx, ctx.delete("coupon", coupon), params)


@route("GET", "/v1/coupons", params=stripe.params.CouponListParams)
def list_coupons(ctx, params):
    page = ctx.list("coupon", params, url="/v1/coupons")
    page["data"] = [_shown(ctx, c) for c in page["data"]]
    return answer(ctx, page, params)


# ------------------------------------------------------------------ discounts


def make_discounts(ctx, specs, *, param: str, customer: str, currency: str,
                   invoice: str | None = None, invoice_item: str | None = None) -> list[str]:
    """Discount objects for a `discounts` param ([{coupon} | {discount}]); returns
    their ids. A coupon is redeemed once per discount made from it."""
    if specs in (None, ""):
        return []
    ids, seen = [], set()
    for i, spec in enumerate(specs):
        where = f"{param}[{i}]"
        given = [k for k in ("coupon", "discount", "promotion_code") if spec.get(k)]
        if len(given) != 1:
            raise invalid_request(
                "Each discount must specify exactly one of coupon, discount or promotion_code.", param=where
            )
        kind = given[0]
        if kind == "promotion_code":
            # No promotion codes in the sandbox: none can exist.
            raise resource_missing("promotion_code", spec["promotion_code"], param=f"{where}[promotion_code]")
        if kind == "discount":
            existing = ctx.get("discount", spec["discount"], param=f"{where}[discount]")
            ids.append(existing["id"])
            continue
        coupon = ctx.get("coupon", spec["coupon"], param=f"{where}[coupon]")
        if coupon["id"] in seen:
            raise invalid_request("You cannot apply the same coupon more than once.", param=where)
        seen.add(coupon["id"])
        if not _is_valid(ctx, coupon):
            raise invalid_request(f"Coupon expired: {coupon['id']}", param=f"{where}[coupon]")
        if coupon_amount_off(coupon, currency) is None and coupon["percent_off"] is None:
            raise invalid_request(
                f"The coupon {coupon['id']} has an amount_off in {coupon['currency']} and cannot be "
                f"applied to an object in {currency}.",
                param=f"{where}[coupon]",
            )
        ids.append(_discount(ctx, coupon, customer=customer, invoice=invoice, invoice_item=invoice_item)["id"])
    return ids


def coupon_amount_off(terms: dict, currency: str) -> int | None:
    if terms.get("amount_off") is None:
        return None
    if terms.get("currency") == currency:
        return terms["amount_off"]
    option = (terms.get("currency_options") or {}).get(currency)
    return option["amount_off"] if option else None


def _discount(ctx, coupon: dict, *, customer, invoice, invoice_item) -> dict:
    now = ctx.now()
    end = None
    if coupon["duration"] == "repeating":
        # Months taken as 30 days: the sandbox has no calendar-aware billing cycles.
        end = now + coupon["duration_in_months"] * 30 * 24 * 3600
    discount = shape(
        "discount",
        id=ctx.new_id("di"),
        customer=customer,
        end=end,
        invoice=invoice,
        invoice_item=invoice_item,
        source={"coupon": coupon["id"], "type": "coupon"},
        start=now,
    )
    discount["_coupon"] = {k: coupon[k] for k in ("id", "percent_off", "amount_off", "currency",
                                                  "currency_options", "applies_to")}
    ctx.insert(discount)
    coupon["times_redeemed"] += 1
    coupon["valid"] = _is_valid(ctx, coupon)
    ctx.save(coupon)
    return discount


def discount_terms(ctx, discount_id: str) -> dict:
    return ctx.find(discount_id, "discount")["_coupon"]


def set_discount_owner(ctx, discount_ids, *, invoice=None, invoice_item=None) -> None:
    """Discounts made before their invoice item had an id learn it here."""
    for did in discount_ids:
        d = ctx.get("discount", did)
        if d["invoice"] is None and d["invoice_item"] is None:
            d["invoice"], d["invoice_item"] = invoice, invoice_item
            ctx.save(d)
