"""The sandbox's fast answer shaping gives what the plain rules give, byte for byte.

`spec_shapes.conform` is compiled per schema and key set, `core.expand` copies only
what it changes, and billing answers without `expand[]` skip `public()`'s deep copy;
tests/reference_conform.py keeps the straightforward versions (a loop over every key,
a deep copy then expansion in place). Compared here, as json.dumps writes them: over
Stripe's example objects, every schema's empty object, every object a varied history
leaves in the store (raw, internal fields included, and events), and the answers of
list and retrieve endpoints. Answers must also leave the stored objects as they were
(they now share what they pass through unchanged).
"""

import json

import pytest

from stripe_sandbox import spec_shapes
from stripe_sandbox.app import Request
from stripe_sandbox.bulk import bulk_history
from stripe_sandbox.core import Ctx, expand
from stripe_sandbox.resources.billing_common import public
from stripe_sandbox.seed_history import seed_history
from stripe_sandbox.spec_shapes import INCLUDABLE, conform, conform_as, schemas
from stripe_sandbox.testing import new_secret_key

from . import reference_conform as ref
from .test_shapes import fixtures
from .test_spec_conformance import _flow


def _json(value) -> str:
    return json.dumps(value)


def _conform_both(obj, paths=()):
    return _json(conform(obj, paths)), _json(ref.conform(obj, paths))


@pytest.fixture(params=["plans kept", "plans not kept"])
def plans(request, monkeypatch):
    """Both ways the compiled shaping runs: with its plans cached, and past the cap."""
    spec_shapes._plans.clear()  # noqa: SLF001
    if request.param == "plans not kept":
        monkeypatch.setattr(spec_shapes, "_MAX_PLANS", 0)
    yield
    spec_shapes._plans.clear()  # noqa: SLF001


def test_conform_matches_the_reference_on_stripes_examples(plans):
    examples = fixtures()
    assert examples
    for name, obj in examples.items():
        includable = sorted(INCLUDABLE.get(obj.get("object"), ()))
        for paths in ((), includable):
            ours, theirs = _conform_both(obj, paths)
            assert ours == theirs, f"{name} (expand {paths})"
            # The same object again (a kept plan) and shaped by its schema directly.
            assert _conform_both(obj, paths)[0] == theirs
        schema = spec_shapes.schema_for(obj)
        if schema:
            assert _json(conform_as(schema, obj, "/v1/x/1")) == _json(ref.conform_as(schema, obj, "/v1/x/1"))


def test_conform_as_matches_the_reference_for_every_schemas_empty_object(plans):
    for name in schemas():
        assert _json(conform_as(name, {}, "/v1/owner/1")) == _json(ref.conform_as(name, {}, "/v1/owner/1")), name
        assert _json(conform_as(name, {}, None)) == _json(ref.conform_as(name, {}, None)), name


def test_conform_matches_the_reference_key_by_key():
    """Each rule on its own: None in a nullable, a required and an optional field,
    a field the spec does not know, one kept outside it, a sub-list without url, and
    the same schema with its keys in another order (another plan)."""
    charge = {"id": "ch_1", "object": "charge", "amount": None, "application_fee_amount": None,
              "transfer": None, "source": {"id": "card_1"}, "level3": {"x": 1}, "_internal": 1,
              "refunds": {"object": "list", "data": [{"id": "re_1", "object": "refund", "amount": 5}]},
              "outcome": None, "billing_details": None, "metadata": None}
    ours, theirs = _conform_both(charge)
    assert ours == theirs
    shaped = json.loads(ours)
    assert shaped["amount"] == 0 and shaped["application_fee_amount"] is None and "transfer" not in shaped
    assert shaped["source"] == {"id": "card_1"} and "level3" not in shaped and "_internal" not in shaped
    assert shaped["refunds"]["url"] == "/v1/charges/ch_1/refunds"
    reordered = dict(reversed(list(charge.items())))
    assert _conform_both(reordered)[0] == _conform_both(reordered)[1]
    assert list(json.loads(_conform_both(reordered)[0])) != list(shaped)


def test_conform_matches_the_reference_when_alternatives_are_picked_per_value():
    """A field with several possible schemas: picked by `object` and `deleted` (the
    pick is cached), by fit without `object`, and never matched by a non-string
    `object` (not cacheable, still answered)."""
    for customer in ({"id": "cus_1", "object": "customer", "name": "A"},
                     {"id": "cus_1", "object": "customer", "deleted": True},
                     {"id": "cus_1", "name": "A"},
                     {"id": "cus_1", "object": {"not": "a name"}}):
        invoice = {"id": "in_1", "object": "invoice", "customer": customer}
        ours, theirs = _conform_both(invoice)
        assert ours == theirs, customer
    source = {"id": "ba_1", "bank_name": "B", "routing_number": "1"}
    assert _json(conform_as("invoice", {"default_source": source})) == \
        _json(ref.conform_as("invoice", {"default_source": source}))


def _history(sandbox) -> tuple[str, str]:
    """A platform key and a connected account holding every kind of object the
    sandbox makes: the conformance tour, seed_history's mixed states, bulk invoices."""
    key = new_secret_key()
    _flow(sandbox, sandbox.client(key), key)
    acct = sandbox.connect_account(key, "history@example.test")
    seed_history(sandbox.client(key), acct, customers=4, invoices=16)
    bulk_history(sandbox.server.sandbox, secret_key=key, email="history@example.test", customers=3, invoices=12)
    return key, acct


def test_conform_matches_the_reference_on_everything_the_sandbox_stores(sandbox):
    _history(sandbox)
    store = sandbox.server.sandbox.store
    kinds = set()
    for obj in list(store.objects.values()):
        kinds.add(obj.get("object"))
        ours, theirs = _conform_both(obj)
        assert ours == theirs, obj.get("id")
        includable = sorted(INCLUDABLE.get(obj.get("object"), ()))
        if includable:
            assert _conform_both(obj, includable)[0] == _conform_both(obj, includable)[1]
        if obj.get("object") == "list":
            continue
    assert {"invoice", "charge", "payment_intent", "refund", "dispute", "credit_note", "event",
            "balance_transaction", "invoice_payment", "customer", "product", "price"} <= kinds


LISTS = [
    ("/v1/customers", "customer", ()),
    ("/v1/products", "product", ("data.default_price",)),
    ("/v1/prices", "price", ()),
    ("/v1/payment_intents", "payment_intent", ("data.latest_charge.balance_transaction", "data.customer")),
    ("/v1/charges", "charge", ("data.balance_transaction",)),
    ("/v1/charges", "charge", ()),
    ("/v1/refunds", "refund", ()),
    ("/v1/disputes", "dispute", ()),
    ("/v1/credit_notes", "credit_note", ()),
    ("/v1/events", "event", ()),
    ("/v1/invoices", "invoice", ()),
    ("/v1/invoiceitems", "invoiceitem", ()),
    ("/v1/invoice_payments", "invoice_payment", ()),
    ("/v1/tax_rates", "tax_rate", ()),
]


def _query(paths, **params) -> str:
    return "&".join([f"{k}={v}" for k, v in params.items()] + [f"expand[]={p}" for p in paths])


def test_answers_match_the_reference_pipeline_and_leave_the_store_as_it_was(sandbox):
    key, acct = _history(sandbox)
    sb = sandbox.server.sandbox
    platform = sb.store.api_keys[key]["account"]
    before = json.dumps(sb.store.objects)
    seen = set()
    # The platform's own account (the conformance tour) and the connected one (histories).
    for account, headers in ((platform, {"Authorization": f"Bearer {key}"}),
                             (acct, {"Authorization": f"Bearer {key}", "Stripe-Account": acct})):
        ctx = Ctx(sb, account=account)

        def served(path, query):
            resp = sb.handle(Request("GET", path, query, headers))  # noqa: B023
            assert resp.status == 200, resp.body[:500]
            return resp.body.decode()

        def reference(obj, paths):
            # The pipeline as it was: internal fields dropped and a deep copy, expansion
            # in place, the plain conform.
            return _json(ref.conform(ref.expand(ctx, public(obj), paths), paths))  # noqa: B023

        for url, kind, paths in LISTS:
            if any(True for _ in ctx.objects(kind)):
                seen.add(kind)
            page = ctx.list(kind, {"limit": 100}, url=url)
            assert served(url, _query(paths, limit=100)) == reference(page, paths), (url, paths)

        for inv in list(ctx.objects("invoice"))[:10]:
            assert served(f"/v1/invoices/{inv['id']}", "") == reference(inv, ())
        for pi in list(ctx.objects("payment_intent"))[:10]:
            paths = ("latest_charge.balance_transaction", "customer", "payment_method")
            assert served(f"/v1/payment_intents/{pi['id']}", _query(paths)) == reference(pi, paths)
        for cus in list(ctx.objects("customer"))[:5]:
            assert served(f"/v1/customers/{cus['id']}", _query(["tax_ids"])) == reference(cus, ["tax_ids"])
    assert seen == {kind for _, kind, _ in LISTS}
    assert json.dumps(sb.store.objects) == before


def test_expand_copies_what_it_changes_and_nothing_else(sandbox):
    key, acct = _history(sandbox)
    sb = sandbox.server.sandbox
    ctx = Ctx(sb, account=acct)
    page = ctx.list("payment_intent", {"limit": 100}, url="/v1/payment_intents")
    stored = [dict(pi) for pi in page["data"]]
    out = expand(ctx, page, ["data.latest_charge.balance_transaction"])
    assert out is not page and [dict(pi) for pi in page["data"]] == stored
    with_charge = [i for i, pi in enumerate(page["data"]) if pi["latest_charge"]]
    assert with_charge
    for i in with_charge:
        pi, shown = page["data"][i], out["data"][i]
        charge = sb.store.objects[pi["latest_charge"]]
        assert shown is not pi and shown["latest_charge"] is not charge
        assert shown["latest_charge"]["balance_transaction"] == sb.store.objects[charge["balance_transaction"]]
        # What expansion did not touch is the stored object's own value.
        assert shown["metadata"] is pi["metadata"] and shown["latest_charge"]["outcome"] is charge["outcome"]
    assert expand(ctx, page, []) is page
