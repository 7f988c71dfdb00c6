"""The driver of .ci/multihost (read that first): runs in the root namespace, talks HTTP to
the two web hosts like a browser, reads the shared PostgreSQL to check the outcome, and
kills / stops what .ci/multihost started in the namespaces. Exits non-zero on any failure.
"""
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from html import unescape

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

WEB1, WEB2 = os.environ["MULTIHOST_WEB1"], os.environ["MULTIHOST_WEB2"]
TAG, PGDATA, LOGS = os.environ["MULTIHOST_TAG"], os.environ["MULTIHOST_PGDATA"], os.environ["MULTIHOST_LOGS"]
DB_ADDR, WORK = os.environ["MULTIHOST_DB_ADDR"], os.environ["MULTIHOST_WORK"]
REDIS_PASSWORD = os.environ["MULTIHOST_REDIS_PASSWORD"]
MONTH_END_CONTACTS = int(os.environ.get("MULTIHOST_INVOICES", "60"))
T0 = time.monotonic()


def say(msg):
    print(f"[multihost {time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise SystemExit(f"multihost FAILED: {msg}")


def in_ns(host, *cmd, **kw):
    return subprocess.run(["ip", "netns", "exec", f"{TAG}-{host}", *cmd], check=kw.pop("check", True), **kw)


def wait_for(what, fn, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if fn():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"multihost FAILED: {what} not within {timeout}s")


def ready(base):
    resp = requests.get(base + "/health/ready/", headers={"Accept": "application/json"}, timeout=10)
    return resp.status_code, resp.json()


class Browser:
    """One staff user's browser: a cookie jar sent to whichever web host is asked (the
    session lives in the shared database), CSRF token from the cookie."""

    def __init__(self):
        self.cookies = {}

    def _keep(self, resp):
        self.cookies.update({c.name: c.value for c in resp.cookies})
        return resp

    def get(self, url, **kw):
        return self._keep(requests.get(url, cookies=self.cookies, allow_redirects=False, timeout=30, **kw))

    def post(self, url, data, **kw):
        data = {**data, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
        return self._keep(requests.post(url, data=data, cookies=self.cookies, allow_redirects=False, timeout=60,
                                        headers={"Referer": url}, **kw))


def main():
    say("waiting for both web hosts (they migrate first: one waits on the other's lock)")
    wait_for("web1 and web2 live", lambda: all(requests.get(b + "/health/", timeout=5).ok for b in (WEB1, WEB2)), 420)
    wait_for("web1 and web2 ready", lambda: all(ready(b)[0] == 200 for b in (WEB1, WEB2)), 60)
    say(f"both ready: {ready(WEB1)[1]}")

    # The demo data and its well-known logins: seed_demo insists on DEBUG (a demo database).
    subprocess.run([sys.executable, "manage.py", "seed_demo"], env={**os.environ, "DJANGO_DEBUG": "1"}, check=True,
                   stdout=subprocess.DEVNULL)
    import django

    django.setup()
    from django.db import connection

    from crm.models import Business, Individual
    from finance.models import Billable, Invoice, InvoiceLine
    from stripe_integration.models import StripeConnection
    from stripe_integration.tests.oauth_helpers import consent

    business = Business.objects.get(slug="demo")

    # --- the demo flow, through both web hosts -----------------------------------------
    browser = Browser()
    check(browser.get(WEB1 + "/login/").status_code == 200, "login page on web1")
    resp = browser.post(WEB1 + "/login/", {"username": "finance", "password": "finance"})
    check(resp.status_code == 302, f"login on web1: {resp.status_code}")
    for base in (WEB1, WEB2):  # the same session on both hosts
        for path in ("/", "/billables/", "/integrations/stripe/"):
            resp = browser.get(base + path)
            check(resp.status_code == 200, f"{base}{path}: {resp.status_code}")
    authorize = browser.get(WEB1 + "/integrations/stripe/connect/")
    check(authorize.status_code == 302, f"connect on web1: {authorize.status_code}")
    back = consent(authorize.headers["Location"])
    check(back.startswith(WEB2), f"Stripe sends the browser back to the site (web2): {back}")
    resp = browser.get(back)
    check(resp.status_code == 302, f"OAuth callback on web2: {resp.status_code} {resp.text[:300]}")
    conn = StripeConnection.objects.get(business=business, status="connected")
    say(f"connected {conn.stripe_user_id} (started on web1, finished on web2)")

    # --- month-end, one worker killed in the middle -----------------------------------
    for i in range(MONTH_END_CONTACTS):
        contact = Individual(business=business, name=f"Month-end client {i:03}", email=f"client{i}@month-end.example",
                             country="GB")
        contact.full_clean()
        contact.save()
        bill = Billable(business=business, bill_to=contact, description=f"Retainer {i:03}", currency="USD",
                        quantity=Decimal("1"), unit_price=Decimal("100.00") + i, vat_rate=Decimal("0"))
        bill.full_clean()
        bill.save()
    unbilled = list(Billable.objects.filter(business=business, status="unbilled").values_list("pk", flat=True))
    before = Invoice.objects.filter(business=business).count()
    resp = browser.post(WEB2 + "/invoices/send/", {"billables": [str(pk) for pk in unbilled], "approved": "on",
                                                    "next": "/billables/"})
    check(resp.status_code == 302, f"Send to Stripe on web2: {resp.status_code}")
    run = Invoice.objects.filter(business=business).order_by("pk")[before:]
    run_ids = [inv.pk for inv in run]
    check(len(run_ids) >= 10, f"the month-end run made {len(run_ids)} invoices")
    say(f"month-end: {len(unbilled)} billables -> {len(run_ids)} invoices, pushes queued")

    def pushed():
        return Invoice.objects.filter(pk__in=run_ids, push_status="pushed").count()

    wait_for("the first pushes", lambda: pushed() >= 3, 120)
    at_kill = pushed()
    pids = subprocess.run(["ip", "netns", "pids", f"{TAG}-worker1"], capture_output=True, text=True).stdout.split()
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    killed_at = time.time()
    pushing = Invoice.objects.filter(pk__in=run_ids, push_status="pushing").count()
    say(f"killed worker1 ({len(pids)} processes, SIGKILL) with {at_kill}/{len(run_ids)} pushed, {pushing} in flight")
    check(at_kill < len(run_ids), "the run finished before worker1 could be killed (raise MULTIHOST_INVOICES)")

    wait_for("the month-end run to complete on worker2", lambda: pushed() == len(run_ids), 240)
    say(f"all {len(run_ids)} invoices pushed after the kill")

    # No lost billable: every billable sent is invoiced once, by one line of one invoice.
    sent = Billable.objects.filter(pk__in=unbilled)
    lost = [b.pk for b in sent if b.status != "invoiced" or b.invoice_id not in run_ids]
    left_out = set(unbilled) - set(InvoiceLine.objects.filter(invoice_id__in=run_ids).values_list("billable_id", flat=True))
    check(not lost and not left_out, f"lost billables: {lost} {sorted(left_out)}")
    with connection.cursor() as cur:
        cur.execute("SELECT billable_id FROM finance_invoiceline GROUP BY billable_id HAVING count(*) > 1")
        check(not cur.fetchall(), "a billable on two invoice lines")
    # No duplicate: Stripe holds exactly one invoice per CRM invoice of the run.
    stripe_ids = []
    params = {"limit": 100}
    while True:
        page = requests.get(os.environ["STRIPE_API_BASE"] + "/v1/invoices", params=params, timeout=30,
                            auth=(os.environ["STRIPE_SECRET_KEY"], ""),
                            headers={"Stripe-Account": conn.stripe_user_id}).json()
        stripe_ids += [(inv["id"], inv["metadata"].get("crm_invoice_id")) for inv in page["data"]]
        if not page.get("has_more"):
            break
        params["starting_after"] = page["data"][-1]["id"]
    by_crm = {}
    for sid, crm_id in stripe_ids:
        by_crm.setdefault(crm_id, []).append(sid)
    dupes = {k: v for k, v in by_crm.items() if len(v) > 1}
    check(not dupes, f"duplicate Stripe invoices: {dupes}")
    local = dict(Invoice.objects.filter(pk__in=run_ids).values_list("pk", "stripe_invoice_id"))
    check(all(by_crm.get(str(pk)) == [sid] for pk, sid in local.items()),
          "every CRM invoice of the run is one Stripe invoice with its id")
    worker2_log = open(os.path.join(LOGS, "worker2.log")).read()
    took_over = [ln for ln in worker2_log.splitlines() if "invoice_push_task" in ln and "succeeded" in ln]
    check(took_over, "worker2 pushed invoices")
    say(f"no duplicate ({len(stripe_ids)} Stripe invoices, one per CRM invoice), no lost billable "
        f"({len(unbilled)} invoiced once); worker2 ran {len(took_over)} pushes")
    first = Invoice.objects.get(pk=run_ids[0])
    resp = browser.get(f"{WEB1}/invoices/{first.pk}/")
    check(resp.status_code == 200 and first.number in unescape(resp.text),
          f"invoice page on web1: {resp.status_code}, shows {first.number}")

    # --- health goes red when PostgreSQL or Redis stops, green when it is back ----------
    connection.close()
    in_ns("db", "redis-cli", "-h", DB_ADDR, "-a", REDIS_PASSWORD, "--no-auth-warning", "shutdown", "nosave",
          check=False, capture_output=True)
    status, body = ready(WEB1)
    check(status == 500 and body["Broker"] != "working" and body["Cache backend: default"] != "working",
          f"Redis stopped: {status} {body}")
    check(requests.get(WEB2 + "/health/", timeout=10).status_code == 200, "liveness stays green")
    say(f"Redis stopped: /health/ready/ {status} {body}")
    in_ns("db", "redis-server", "--bind", DB_ADDR, "--port", "6379", "--save", "", "--appendonly", "no",
          "--daemonize", "yes", "--requirepass", REDIS_PASSWORD, "--logfile", os.path.join(LOGS, "redis.log"), "--dir", WORK)
    wait_for("ready again after Redis", lambda: ready(WEB1)[0] == 200 and ready(WEB2)[0] == 200, 30)
    say("Redis back: /health/ready/ 200 on both")

    in_ns("db", "runuser", "-u", "postgres", "--", "pg_ctl", "-D", PGDATA, "-m", "fast", "-w", "stop",
          capture_output=True)
    status, body = ready(WEB2)
    check(status == 500 and body["DatabaseHeartBeatCheck"] != "working", f"PostgreSQL stopped: {status} {body}")
    cmd = subprocess.run([sys.executable, "manage.py", "health"], capture_output=True, text=True, timeout=60)
    check(cmd.returncode == 1 and "NOT READY" in cmd.stdout, f"manage.py health with PostgreSQL down: {cmd.stdout}")
    say(f"PostgreSQL stopped: /health/ready/ {status}; manage.py health exits 1")
    in_ns("db", "runuser", "-u", "postgres", "--", "pg_ctl", "-D", PGDATA, "-l", os.path.join(LOGS, "postgres.log"),
          "-w", "start", capture_output=True)
    wait_for("ready again after PostgreSQL", lambda: ready(WEB1)[0] == 200 and ready(WEB2)[0] == 200, 30)
    say("PostgreSQL back: /health/ready/ 200 on both")
    say("PASSED")


if __name__ == "__main__":
    main()
