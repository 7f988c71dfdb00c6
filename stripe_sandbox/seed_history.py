"""History in a connected account before it connects: for the import demo (issue 15).

    python -m stripe_sandbox.seed_history --api-base http://127.0.0.1:12111 \
        --secret-key sk_test_... --email finance@demo.example --business-name "Demo Ltd"

Makes (or reuses: the consent page connects the platform's account for that e-mail) the
connected account, then fills it through Stripe's own API, as the platform acting for it
(Stripe-Account): 30 customers (some with `cc`/`to` e-mails in metadata), a product with
a price, and 60 invoices in mixed states: draft, open, paid by card, void, uncollectible,
paid then partly refunded, paid with a card that gets disputed, credited by a credit
note; one in JPY; plus a payment that pays no invoice. Idempotent: an account that
already has customers is left as it is.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.request

import stripe

STATES = ("draft", "open", "paid", "void", "uncollectible", "refunded", "disputed", "credited")


def _control_account(api_base: str, secret_key: str, email: str, business_name: str) -> str:
    body = json.dumps({"secret_key": secret_key, "email": email, "business_name": business_name}).encode()
    req = urllib.request.Request(api_base.rstrip("/") + "/_sandbox/accounts", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=30) as resp:
        return json.loads(resp.read())["id"]


def seed_history(client: stripe.StripeClient, account: str, *, customers: int = 30, invoices: int = 60) -> dict:
    """Fill `account` (as the platform, with Stripe-Account); returns what was made."""
    opts = {"stripe_account": account}
    if client.v1.customers.list(params={"limit": 1}, options=opts).data:
        return {"account": account, "seeded": False}
    product = client.v1.products.create(params={"name": "Consulting day", "default_price_data": {
        "currency": "usd", "unit_amount": 80000}}, options=opts)
    price_id = product.default_price if isinstance(product.default_price, str) else product.default_price.id
    made = []
    for i in range(customers):
        metadata = {"seed": "history"}
        if i % 5 == 0:
            metadata["cc"] = f"accounts{i}@example.test, boss{i}@example.test"
        if i % 7 == 0:
            metadata["to"] = f"ap{i}@example.test"
        made.append(client.v1.customers.create(params={
            "name": f"History Customer {i:02d}", "email": f"history{i:02d}@example.test", "metadata": metadata},
            options=opts).id)
    counts = {state: 0 for state in STATES}
    for n in range(invoices):
        customer = made[n % len(made)]
        state = STATES[n % len(STATES)]
        currency = "jpy" if n == 10 else "usd"
        inv = client.v1.invoices.create(params={"customer": customer, "currency": currency,
                                                "collection_method": "send_invoice", "days_until_due": 30},
                                        options=opts)
        line = {"description": f"Work {n}", "amount": 12000 + 500 * n} if currency == "jpy" or n % 2 \
            else {"pricing": {"price": price_id}, "quantity": 1}
        client.v1.invoices.add_lines(inv.id, params={"lines": [line]}, options=opts)
        counts[state] += 1
        if state == "draft":
            continue
        inv = client.v1.invoices.finalize_invoice(inv.id, options=opts)
        if state == "void":
            client.v1.invoices.void_invoice(inv.id, options=opts)
        elif state == "uncollectible":
            client.v1.invoices.mark_uncollectible(inv.id, options=opts)
        elif state == "credited":
            client.v1.credit_notes.create(params={"invoice": inv.id, "amount": inv.total // 4,
                                                  "reason": "order_change"}, options=opts)
        elif state in ("paid", "refunded", "disputed"):
            card = "pm_card_createDispute" if state == "disputed" else "pm_card_visa"
            pm = client.v1.payment_methods.attach(card, params={"customer": customer}, options=opts)
            inv = client.v1.invoices.pay(inv.id, params={"payment_method": pm.id}, options=opts)
            if state == "refunded":
                links = client.v1.invoice_payments.list(params={"invoice": inv.id}, options=opts).data
                intent = links[0].payment.payment_intent
                client.v1.refunds.create(params={"payment_intent": intent if isinstance(intent, str) else intent.id,
                                                 "amount": inv.amount_paid // 3}, options=opts)
    # A payment that pays no invoice: the import leaves it out (Upflow's rule).
    client.v1.payment_intents.create(params={"amount": 2500, "currency": "usd", "payment_method": "pm_card_visa",
                                             "confirm": True, "payment_method_types": ["card"]}, options=opts)
    return {"account": account, "seeded": True, "customers": customers, "invoices": counts}


def seed_account(api_base: str, secret_key: str, account: str, **kwargs) -> dict:
    """`seed_history` with a client made here (for callers that do not import stripe)."""
    return seed_history(stripe.StripeClient(secret_key, base_addresses={"api": api_base}), account, **kwargs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--business-name", default="")
    args = parser.parse_args(argv)
    account = _control_account(args.api_base, args.secret_key, args.email, args.business_name)
    result = seed_account(args.api_base, args.secret_key, account)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
