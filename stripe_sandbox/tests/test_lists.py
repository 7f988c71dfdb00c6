"""List objects, pagination, filters and expand[]."""

import pytest
import stripe


def make_customers(client, n, **params):
    return [client.v1.customers.create(params={"email": f"c{i}@example.test", **params}).id for i in range(n)]


def test_list_shape_newest_first_default_limit(sandbox):
    client = sandbox.client()
    ids = make_customers(client, 12)
    page = client.v1.customers.list()
    assert page.object == "list"
    assert page.url == "/v1/customers"
    assert [c.id for c in page.data] == ids[::-1][:10]
    assert page.has_more is True


def test_list_pagination_starting_after_and_ending_before(sandbox):
    client = sandbox.client()
    newest_first = make_customers(client, 7)[::-1]
    first = client.v1.customers.list(params={"limit": 3})
    assert [c.id for c in first.data] == newest_first[:3]
    second = client.v1.customers.list(params={"limit": 3, "starting_after": first.data[-1].id})
    assert [c.id for c in second.data] == newest_first[3:6] and second.has_more
    last = client.v1.customers.list(params={"limit": 3, "starting_after": second.data[-1].id})
    assert [c.id for c in last.data] == newest_first[6:] and not last.has_more
    back = client.v1.customers.list(params={"limit": 2, "ending_before": second.data[0].id})
    assert [c.id for c in back.data] == newest_first[1:3] and back.has_more


def test_list_auto_paging_iterates_everything(sandbox):
    client = sandbox.client()
    ids = make_customers(client, 25)
    seen = [c.id for c in client.v1.customers.list(params={"limit": 4}).auto_paging_iter()]
    assert seen == ids[::-1]


@pytest.mark.parametrize("limit", [0, 101])
def test_list_limit_bounds(sandbox, limit):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        sandbox.client().v1.customers.list(params={"limit": limit})
    assert exc.value.param == "limit"


def test_list_unknown_cursor_is_missing(sandbox):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        sandbox.client().v1.customers.list(params={"starting_after": "cus_nope"})
    assert (exc.value.code, exc.value.param) == ("resource_missing", "starting_after")


def test_list_cursor_deleted_filtered_out_or_of_another_account(sandbox):
    client = sandbox.client()
    newest_first = make_customers(client, 7)[::-1]
    client.v1.customers.delete(newest_first[3])
    kept = [c for c in newest_first if c != newest_first[3]]
    pages, after = [], None
    while True:
        page = client.v1.customers.list(params={"limit": 2, **({"starting_after": after} if after else {})})
        pages.append([c.id for c in page.data])
        if not page.has_more:
            break
        after = page.data[-1].id
    assert pages == [kept[0:2], kept[2:4], kept[4:6]]
    # A cursor the filter leaves out still marks its place.
    filtered = client.v1.customers.list(params={"email": "c1@example.test", "starting_after": newest_first[0]})
    assert [c.id for c in filtered.data] == [newest_first[5]]
    for cursor, other in ((newest_first[3], client), (newest_first[0], sandbox.client())):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            other.v1.customers.list(params={"starting_after": cursor})
        assert (exc.value.code, exc.value.param) == ("resource_missing", "starting_after")
    with pytest.raises(stripe.InvalidRequestError) as exc:  # an id of another type
        client.v1.invoices.list(params={"starting_after": newest_first[0]})
    assert exc.value.code == "resource_missing"


def test_list_customers_filter_email_and_created(sandbox):
    client = sandbox.client()
    a = client.v1.customers.create(params={"email": "same@example.test"})
    client.v1.customers.create(params={"email": "other@example.test"})
    b = client.v1.customers.create(params={"email": "same@example.test"})
    found = client.v1.customers.list(params={"email": "same@example.test"})
    assert [c.id for c in found.data] == [b.id, a.id]
    sandbox.advance_clock(100)
    c = client.v1.customers.create(params={})
    recent = client.v1.customers.list(params={"created": {"gt": a.created + 50}})
    assert [x.id for x in recent.data] == [c.id]


def test_list_excludes_deleted_customers(sandbox):
    client = sandbox.client()
    keep, gone = make_customers(client, 2)
    client.v1.customers.delete(gone)
    assert [c.id for c in client.v1.customers.list().data] == [keep]


def test_expand_top_level_and_in_lists(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P", "default_price_data": {"currency": "usd", "unit_amount": 700}})
    assert isinstance(product.default_price, str)
    one = client.v1.products.retrieve(product.id, params={"expand": ["default_price"]})
    assert one.default_price.unit_amount == 700
    many = client.v1.products.list(params={"expand": ["data.default_price"]})
    assert many.data[0].default_price.id == product.default_price
    price = client.v1.prices.retrieve(product.default_price, params={"expand": ["product.default_price"]})
    assert price.product.name == "P"
    assert price.product.default_price.id == price.id


def test_expand_on_create_response(sandbox):
    client = sandbox.client()
    product = client.v1.products.create(params={"name": "P"})
    price = client.v1.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 5,
                                            "expand": ["product"]})
    assert price.product.id == product.id


def test_expand_rejects_non_expandable_field(sandbox):
    client = sandbox.client()
    cus = client.v1.customers.create(params={"email": "x@example.test"})
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.retrieve(cus.id, params={"expand": ["email"]})
    assert "cannot be expanded (email)" in exc.value.user_message


def test_expand_never_crosses_accounts(sandbox):
    platform_key = "sk_test_expandscope01"
    client = sandbox.client(platform_key)
    acct = sandbox.connect_account(platform_key, "scope@example.test")
    product = client.v1.products.create(params={"name": "Platform", "default_price_data": {"currency": "usd", "unit_amount": 1}})
    # A connected-account product pointing at nothing it can see stays an id.
    other = client.v1.products.create(params={"name": "Theirs"}, options={"stripe_account": acct})
    got = client.v1.products.retrieve(other.id, params={"expand": ["default_price"]}, options={"stripe_account": acct})
    assert got.default_price is None
    assert client.v1.products.retrieve(product.id, params={"expand": ["default_price"]}).default_price.object == "price"
