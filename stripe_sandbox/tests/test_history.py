"""An account's history, made before it connects (seed_history through the API, bulk
straight into the state), read back the way the app's import reads it: cursor-paged
lists with filters and expansions, each answer checked against the spec (conftest)."""
from stripe_sandbox.bulk import bulk_history
from stripe_sandbox.seed_history import seed_history
from stripe_sandbox.testing import new_secret_key


def _all(list_fn, opts, **params):
    out, after = [], None
    while True:
        page = list_fn(params={**params, "limit": 3, **({"starting_after": after} if after else {})}, options=opts)
        out += page.data
        if not page.has_more:
            return out
        after = page.data[-1].id


def test_seed_history_mixed_states_read_back_by_list_calls(sandbox):
    key = new_secret_key()
    acct = sandbox.connect_account(key, "history@example.test")
    c = sandbox.client(key)
    made = seed_history(c, acct, customers=4, invoices=16)
    assert made["invoices"] == {s: 2 for s in ("draft", "open", "paid", "void", "uncollectible", "refunded",
                                               "disputed", "credited")}
    assert seed_history(c, acct, customers=4, invoices=16) == {"account": acct, "seeded": False}
    opts = {"stripe_account": acct}
    assert len(_all(c.v1.customers.list, opts)) == 4
    invoices = _all(c.v1.invoices.list, opts)
    assert len(invoices) == 16 and len(_all(c.v1.invoices.list, opts, status="draft")) == 2
    assert sum(1 for i in invoices if i.status == "paid") == 6
    intents = _all(c.v1.payment_intents.list, opts, expand=["data.latest_charge.balance_transaction"])
    assert len(intents) == 7  # 6 paying invoices, 1 paying nothing
    assert all(pi.latest_charge.balance_transaction.fee > 0 for pi in intents)
    links = _all(c.v1.invoice_payments.list, opts)
    assert len({link.payment.payment_intent for link in links}) == 6
    assert len(_all(c.v1.refunds.list, opts)) == 2 and len(_all(c.v1.disputes.list, opts)) == 2
    assert len(_all(c.v1.credit_notes.list, opts)) == 2
    products = _all(c.v1.products.list, opts, expand=["data.default_price"])
    assert products[0].default_price.unit_amount == 80000
    newest = c.v1.events.list(params={"limit": 1}, options=opts).data[0]
    since = c.v1.events.list(params={"created": {"gte": newest.created}, "limit": 100}, options=opts).data
    assert newest.id in {e.id for e in since} and all(e.created >= newest.created for e in since)


def test_bulk_history_is_the_apis_objects(sandbox):
    key = new_secret_key()
    made = bulk_history(sandbox.server.sandbox, secret_key=key, email="bulk@example.test", customers=5, invoices=20)
    assert made["invoices"] == {"draft": 2, "void": 2, "open": 6, "paid": 10}
    c = sandbox.client(key)
    opts = {"stripe_account": made["account"]}
    assert len(_all(c.v1.invoices.list, opts)) == 20
    assert len(_all(c.v1.invoices.list, opts, status="paid")) == 10
    assert len(_all(c.v1.payment_intents.list, opts)) == 10
