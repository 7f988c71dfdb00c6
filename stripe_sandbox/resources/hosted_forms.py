"""The payment choices of the hosted invoice page: card, "Bank account (ACH)" and
"SEPA Direct Debit", each its own plain HTML form (no JavaScript) posting `method`
to the page, with Stripe's test numbers shown as hints. ACH is offered on usd
invoices and SEPA on eur ones (the currencies they debit); the other is listed as
unavailable. `bank_from_form` makes the bank PaymentMethod from the posted fields
(payments_bank.new_bank_payment_method checks them).
"""

from __future__ import annotations

from .payments_bank import CURRENCY


def _esc(text) -> str:
    from .hosted import esc

    return esc(str(text))


def _hints(rows: list[tuple[str, str]]) -> str:
    items = "".join(f"<li><code>{_esc(v)}</code> {_esc(what)}</li>" for v, what in rows)
    return f"<ul class=note>{items}</ul>"


def _value(values: dict, name: str) -> str:
    return _esc(values.get(name, ""))


def payment_forms(token: str, currency: str, amount: str, values: dict | None, error: str | None) -> str:
    from .hosted import card_fields

    v = values or {}
    method = v.get("method") or "card"
    action = f"/hosted/invoices/{_esc(token)}"
    card_error = error if method == "card" else None
    out = [f"""<h2>Card</h2><form method=post action="{action}" id=card-form>
<input type=hidden name=method value=card>{card_fields(v if method == 'card' else None, card_error)}
<p class=note>Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 3220 asks for 3-D Secure;
4000 0000 0000 0002 is declined.</p>
<button type=submit id=pay>Pay {amount}</button></form>"""]
    alert = lambda m: f"<p id=error role=alert>{_esc(error)}</p>" if error and method == m else ""  # noqa: E731
    if currency == CURRENCY["us_bank_account"]:
        out.append(f"""<h2>Bank account (ACH)</h2><form method=post action="{action}" id=ach-form>
<input type=hidden name=method value=us_bank_account>
<label>Account holder name <input name=account_holder value="{_value(v, 'account_holder')}"></label>
<div class=row><label>Routing number <input name=routing_number inputmode=numeric placeholder="110000000"
value="{_value(v, 'routing_number')}"></label>
<label>Account number <input name=account_number inputmode=numeric placeholder="000123456789"></label></div>
{alert('us_bank_account')}{_hints([('110000000', 'routing number'), ('000123456789', 'succeeds'),
                                    ('000222222227', 'fails: insufficient funds'),
                                    ('000111111113', 'fails: account closed')])}
<button type=submit id=pay-ach>Debit {amount} from this bank account</button></form>""")
    else:
        out.append("<h2>Bank account (ACH)</h2><p class=note id=ach-unavailable>For USD invoices only.</p>")
    if currency == CURRENCY["sepa_debit"]:
        out.append(f"""<h2>SEPA Direct Debit</h2><form method=post action="{action}" id=sepa-form>
<input type=hidden name=method value=sepa_debit>
<div class=row><label>Name <input name=account_holder value="{_value(v, 'account_holder')}"></label>
<label>Email <input name=email type=email value="{_value(v, 'email')}"></label></div>
<label>IBAN <input name=iban placeholder="DE89370400440532013000"></label>
{alert('sepa_debit')}{_hints([('DE89370400440532013000', 'succeeds'),
                              ('DE62370400440532013001', 'fails: insufficient funds')])}
<p class=note>By paying you authorise the merchant and Stripe to debit your account (SEPA mandate).</p>
<button type=submit id=pay-sepa>Debit {amount} by SEPA Direct Debit</button></form>""")
    else:
        out.append("<h2>SEPA Direct Debit</h2><p class=note id=sepa-unavailable>For EUR invoices only.</p>")
    return "\n".join(out)


def bank_from_form(ctx, form: dict, method: str) -> dict:
    from ..errors import invalid_request
    from .payments_bank import new_bank_payment_method

    name = (form.get("account_holder") or "").strip() or None
    if method == "us_bank_account":
        details = {"routing_number": (form.get("routing_number") or "").strip(),
                   "account_number": (form.get("account_number") or "").strip(),
                   "account_holder_type": "individual"}
        billing = {"name": name}
    elif method == "sepa_debit":
        details = {"iban": (form.get("iban") or "").strip()}
        billing = {"name": name, "email": (form.get("email") or "").strip() or None}
    else:
        raise invalid_request(f"Unknown payment method {method!r}.", param="method")
    if not name:
        raise invalid_request("Enter the account holder's name.", param="billing_details[name]")
    return new_bank_payment_method(ctx, {"type": method, method: details, "billing_details": billing})
