"""The locust scenario of bench/load.py (run by it; reads its settings from LOAD_SETUP, a
JSON file it writes). Three kinds of user, each at a fixed pace:

* staff (LOAD_STAFF users, 1 page/s each): home, contacts, a contact, tickets, opportunities;
* finance (LOAD_FINANCE users, 1 action/2 s each): billables, an invoice preview of three
  billables, and "Send to Stripe" of one billable (an invoice made and its push queued
  for the Celery worker, which pushes it to the sandbox);
* Stripe (LOAD_WEBHOOK_RATE users, 1 event/s each = that many events per second): signed
  `customer.updated` events for the connected account, each with its own id.

Sessions are kept per user by hand: production cookies are Secure, which the HTTP client
would not send back over the plain HTTP of this bench (no TLS proxy here).
"""
import hashlib
import hmac
import json
import os
import random
import time
import uuid

from locust import HttpUser, constant_throughput, task

SETUP = json.load(open(os.environ["LOAD_SETUP"]))
POOL = list(SETUP["billables"])  # unbilled billables for "Send to Stripe", one each
random.shuffle(POOL)


class Browser(HttpUser):
    abstract = True
    username = ""

    def on_start(self):
        self.jar = {}
        self.go("GET", "/login/", "GET /login/")
        resp = self.go("POST", "/login/", "POST /login/", data={"username": self.username, "password": self.username})
        if resp.status_code != 302:
            raise RuntimeError(f"login as {self.username}: {resp.status_code}")

    def go(self, method, path, name, *, data=None, expect=(200,)):
        if data is not None:
            data = {**data, "csrfmiddlewaretoken": self.jar.get("csrftoken", "")}
        with self.client.request(method, path, name=name, data=data, cookies=self.jar, allow_redirects=False,
                                 headers={"Referer": self.host + path}, catch_response=True) as resp:
            self.jar.update(resp.cookies.get_dict())
            if resp.status_code in expect or (method == "POST" and resp.status_code == 302):
                resp.success()
            else:
                resp.failure(f"{resp.status_code}")
            return resp


class Staff(Browser):
    weight = int(os.environ.get("LOAD_STAFF", "10"))
    wait_time = constant_throughput(1)
    username = "staff"

    @task(3)
    def home(self):
        self.go("GET", "/", "staff GET /")

    @task(3)
    def contacts(self):
        self.go("GET", "/contacts/", "staff GET /contacts/")

    @task(2)
    def contact(self):
        self.go("GET", f"/contacts/{random.choice(SETUP['contacts'])}/", "staff GET /contacts/<id>/")

    @task(1)
    def tickets(self):
        self.go("GET", "/tickets/", "staff GET /tickets/")

    @task(1)
    def opportunities(self):
        self.go("GET", "/opportunities/", "staff GET /opportunities/")


class Finance(Browser):
    weight = int(os.environ.get("LOAD_FINANCE", "3"))
    wait_time = constant_throughput(0.5)
    username = "finance"

    @task(2)
    def billables(self):
        self.go("GET", "/billables/", "finance GET /billables/")

    @task(2)
    def preview(self):
        ids = random.sample(SETUP["billables"], 3)
        self.go("POST", "/invoices/preview/", "finance POST /invoices/preview/", data={"billables": ids})

    @task(1)
    def send(self):
        if POOL:
            self.go("POST", "/invoices/send/", "finance POST /invoices/send/",
                    data={"billables": [POOL.pop()], "next": "/billables/"}, expect=(302,))


class Stripe(HttpUser):
    weight = int(os.environ.get("LOAD_WEBHOOK_RATE", "100"))
    wait_time = constant_throughput(1)

    @task
    def event(self):
        obj = {"id": "cus_load" + uuid.uuid4().hex[:14], "object": "customer", "email": None, "metadata": {}}
        body = json.dumps({
            "id": "evt_load" + uuid.uuid4().hex, "object": "event", "type": "customer.updated",
            "account": SETUP["account"], "livemode": False, "api_version": "2026-08-26.dahlia",
            "created": int(time.time()), "data": {"object": obj}, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
        }).encode()
        t = int(time.time())
        sig = hmac.new(SETUP["webhook_secret"].encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        self.client.post("/stripe/webhook/", data=body, name="stripe POST /stripe/webhook/",
                         headers={"Stripe-Signature": f"t={t},v1={sig}", "Content-Type": "application/json"})
