"""Test set-up in Stripe, over raw HTTP to the sandbox: what a customer or the Stripe
dashboard would do (make invoices, pay them, refund, void ...), none of which the app's
production code does. Only the gateway may import `stripe`, so this speaks Stripe's HTTP
API directly: form-encoded bodies with Stripe's bracket notation, the platform key as
Bearer, `Stripe-Account` for the connected account. The sandbox's control plane
(`/_sandbox/webhooks/...`) shapes and awaits webhook deliveries.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from html import unescape

import requests

TIMEOUT = 15


def form_encode(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's nested form encoding: a[b]=1, items[0][price]=..., expand[]=..."""
    pairs = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs += form_encode(value, name)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    pairs += form_encode(item, f"{name}[{i}]")
                else:
                    pairs.append((f"{name}[]", _scalar(item)))
        elif value is not None:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header, computed here independently of the app's verifier."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class StripeError(Exception):
    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        super().__init__(f"{status}: {json.dumps(body)[:300]}")


class StripeHTTP:
    def __init__(self, base_url: str, secret_key: str, account: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.secret_key = secret_key
        self.account = account
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only, never through a proxy

    # --- the API ---
    def _headers(self, idempotency_key=None) -> dict:
        headers = {"Authorization": f"Bearer {self.secret_key}"}
        if self.account:
            headers["Stripe-Account"] = self.account
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    def _answer(self, resp) -> dict:
        body = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            raise StripeError(resp.status_code, body)
        return body

    def post(self, path: str, params: dict | None = None, *, idempotency_key: str | None = None) -> dict:
        resp = self.session.post(self.base_url + path, data=form_encode(params or {}),
                                 headers=self._headers(idempotency_key), timeout=TIMEOUT)
        return self._answer(resp)

    def get(self, path: str, params: dict | None = None) -> dict:
        resp = self.session.get(self.base_url + path, params=form_encode(params or {}), headers=self._headers(),
                                timeout=TIMEOUT)
        return self._answer(resp)

    def delete(self, path: str) -> dict:
        return self._answer(self.session.delete(self.base_url + path, headers=self._headers(), timeout=TIMEOUT))

    # --- shortcuts ---
    def customer(self, email: str = "ada@example.test", name: str = "Ada Lovelace") -> dict:
        return self.post("/v1/customers", {"email": email, "name": name})

    def draft_invoice(self, customer: str, items=((5000, "Design work"),), currency: str = "usd",
                      collection_method: str = "send_invoice") -> dict:
        params = {"customer": customer, "collection_method": collection_method, "currency": currency}
        if collection_method == "send_invoice":
            params["days_until_due"] = 30
        invoice = self.post("/v1/invoices", params)
        for amount, description in items:
            self.post("/v1/invoiceitems", {"customer": customer, "invoice": invoice["id"], "amount": amount,
                                           "currency": currency, "description": description})
        return self.get(f"/v1/invoices/{invoice['id']}")

    def open_invoice(self, customer: str, **kwargs) -> dict:
        draft = self.draft_invoice(customer, **kwargs)
        return self.post(f"/v1/invoices/{draft['id']}/finalize")

    def attach_card(self, customer: str, test_pm: str = "pm_card_visa") -> dict:
        return self.post(f"/v1/payment_methods/{test_pm}/attach", {"customer": customer})

    def pay(self, invoice_id: str, payment_method: str | None = None) -> dict:
        return self.post(f"/v1/invoices/{invoice_id}/pay", {"payment_method": payment_method})

    def refund(self, payment_intent: str, amount: int | None = None) -> dict:
        return self.post("/v1/refunds", {"payment_intent": payment_intent, "amount": amount})

    def void(self, invoice_id: str) -> dict:
        return self.post(f"/v1/invoices/{invoice_id}/void")

    def mark_uncollectible(self, invoice_id: str) -> dict:
        return self.post(f"/v1/invoices/{invoice_id}/mark_uncollectible")

    def delete_invoice(self, invoice_id: str) -> dict:
        return self.delete(f"/v1/invoices/{invoice_id}")

    def invoice_payments(self, invoice_id: str) -> list[dict]:
        return self.get("/v1/invoice_payments", {"invoice": invoice_id})["data"]

    def save_card(self, customer: str, test_pm: str = "pm_card_visa") -> dict:
        """A SetupIntent confirmed at once (what Stripe.js does when a card is saved)."""
        return self.post("/v1/setup_intents", {"customer": customer, "payment_method": test_pm, "confirm": True,
                                               "payment_method_types": ["card"]})

    def deauthorize(self, client_id: str) -> dict:
        """The account disconnects the platform (as from its Stripe dashboard)."""
        return self.post("/oauth/deauthorize", {"client_id": client_id, "stripe_user_id": self.account})

    # --- hosted pages (no key: a customer's browser) ---
    def hosted_pay(self, hosted_url: str, card_number: str) -> tuple[int, str]:
        """Submit the hosted invoice page's card form; (status, error shown on the page)."""
        fields = {"card_number": card_number, "exp": "12 / 34", "cvc": "123", "name": "Ada Lovelace"}
        resp = requests.post(hosted_url, data=fields, allow_redirects=False, timeout=TIMEOUT)
        match = re.search(r"id=error[^>]*>(.*?)</", resp.text, re.S)
        return resp.status_code, unescape(match.group(1).strip()) if match else ""

    # --- the sandbox's control plane ---
    def control(self, method: str, path: str, body: dict | None = None) -> dict:
        resp = self.session.request(method, self.base_url + "/_sandbox" + path, json=body, timeout=60)
        resp.raise_for_status()
        return resp.json() if resp.content else {}

    def chaos(self, *, duplicate: float = 0.5, shuffle: bool = True, delay_ms=(0, 150), seed: int = 7) -> dict:
        return self.control("POST", "/webhooks/chaos", {"duplicate": duplicate, "shuffle": shuffle,
                                                        "delay_ms": list(delay_ms), "seed": seed})

    def calm(self) -> dict:
        return self.control("DELETE", "/webhooks/chaos")

    def drain(self, timeout: float = 30) -> None:
        """Wait until every delivery (retries included) is done."""
        assert self.control("POST", "/webhooks/drain", {"timeout": timeout})["drained"], "webhooks did not drain"

    def deliveries(self, **filters) -> list[dict]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return self.control("GET", "/webhooks/deliveries" + (f"?{query}" if query else ""))["data"]

    def events(self, **params) -> list[dict]:
        return self.get("/v1/events", {"limit": 100, **params})["data"]
