"""The import's parallel listing (importing/listing.py): cursor chains over `created`
windows, split as pages come back, every object handed over exactly once however objects
spread over time or crowd into one second; the resume state handed with each page covers
exactly what is left (a stop after ANY page resumes with nothing missed or listed twice);
fetch errors surface after the pages fetched before them; threads always stopped.

The listing is driven here by an in-memory Stripe list (`_Stripe`: newest first,
`created[gte]`/`created[lt]`, `starting_after`, 5 a page) so every stop point can be
tried; the import tests over HTTP are in test_import_chains.py."""
import random
import threading

import pytest

from stripe_integration.gateway import request_ids
from stripe_integration.gateway.client import StripeUnavailable
from stripe_integration.importing.listing import Chain, Listing, cuts

T0 = 1_760_000_000


def _fetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("import-fetch")]


class _Stripe:
    """One list as Stripe serves it: newest first (ties: later made first), filtered by the
    window, after the cursor, `limit` a page. Records each call; may fail the Nth."""

    def __init__(self, created: list[int], *, limit=5, fail_call=None, prefix="o"):
        # Made in time order: o_0 is the oldest.
        self.objects = [{"id": f"{prefix}_{i}", "created": t} for i, t in enumerate(sorted(created))][::-1]
        self.limit = limit
        self.fail_call = fail_call
        self.calls = []
        self.lock = threading.Lock()

    def fetch(self, chain: Chain):
        with self.lock:
            self.calls.append(chain)
            number = len(self.calls)
        if number == self.fail_call:
            raise StripeUnavailable()
        request_ids.note(f"req_{number}")
        rows = self.objects
        if chain.after:
            rows = rows[[o["id"] for o in rows].index(chain.after) + 1:]
        rows = [o for o in rows if o["created"] >= chain.gte and (chain.lt is None or o["created"] < chain.lt)]
        return rows[:self.limit], len(rows) > self.limit


def _spread(seed=7):
    """Objects over many seconds (one a second, a sparse stretch far back) and crowds of
    objects in single seconds (more than a page in one)."""
    rng = random.Random(seed)
    created = [T0 - 86400 * 300 + 3600 * i for i in range(12)]  # sparse, long ago
    created += [T0 + s for s in range(60)]  # one every second
    created += [T0 + 30] * 23 + [T0 + 61] * 11 + [T0 + 100] * 7  # crowds in one second
    created += [T0 + rng.randrange(0, 200) for _ in range(40)]
    return created


def _listed(stripe, chains, *, concurrency, key="k"):
    """Every page the listing hands over: [(key, ids, resume)]."""
    with Listing([(key, stripe.fetch, chains)], concurrency=concurrency) as pages:
        out = [(p.key, [o["id"] for o in p.objects], p.resume) for p in pages]
    return out, pages


@pytest.mark.parametrize("concurrency", [1, 2, 8])
def test_every_object_once_over_spread_seconds_and_crowded_seconds(concurrency):
    stripe = _Stripe(_spread())
    listed, pages = _listed(stripe, [Chain(lt=T0 + 1000)], concurrency=concurrency)
    ids = [i for _, page, _ in listed for i in page]
    assert sorted(ids) == sorted(o["id"] for o in stripe.objects)
    assert len(ids) == len(set(ids))
    assert listed[-1][2] is None and all(resume for _, _, resume in listed[:-1])
    if concurrency == 1:  # one chain: the whole range, page after page
        assert pages.most_chains == 1 and {(c.gte, c.lt) for c in stripe.calls} == {(0, T0 + 1000)}
    else:  # split: several windows listed, never more chains than asked for
        assert 1 < pages.most_chains <= concurrency
        assert len({(c.gte, c.lt) for c in stripe.calls}) > 2
    assert not _fetch_threads()


def test_chains_windows_partition_the_range_at_every_page():
    """Each page's resume state: windows that never overlap, inside the range (that they
    cover, with what was handed over, everything: the stop test below)."""
    stripe = _Stripe(_spread())
    listed, _ = _listed(stripe, [Chain(lt=T0 + 1000)], concurrency=4)
    for _, _, resume in listed[:-1]:
        windows = sorted((c["gte"], c["lt"]) for c in resume)
        for (_, lt), (gte, _) in zip(windows, windows[1:]):
            assert lt <= gte, windows
        assert windows[0][0] >= 0 and windows[-1][1] <= T0 + 1000


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_a_stop_after_any_page_resumes_with_nothing_missed_or_twice(concurrency):
    """Killed after page k was written (for every k): a new listing from that page's
    resume state hands over exactly the objects not handed over before."""
    created = _spread(seed=11)
    full, _ = _listed(_Stripe(created), [Chain(lt=T0 + 1000)], concurrency=concurrency)
    everything = sorted(o["id"] for o in _Stripe(created).objects)
    for k in range(1, len(full)):
        stripe = _Stripe(created)
        with Listing([("k", stripe.fetch, [Chain(lt=T0 + 1000)])], concurrency=concurrency) as pages:
            first = []
            for page in pages:
                first.append(page)
                if len(first) == k:
                    break
        before = [o["id"] for p in first for o in p.objects]
        resume = first[-1].resume
        if resume is None:
            rest = []
        else:
            rest, _ = _listed(_Stripe(created), [Chain.from_json(c) for c in resume], concurrency=concurrency)
        after = [i for _, page, _ in rest for i in page]
        assert sorted(before + after) == everything, k
        assert not _fetch_threads()


def test_phases_in_order_and_each_ends_with_one_page_saying_so():
    a, b = _Stripe(_spread(seed=1), prefix="a"), _Stripe(_spread(seed=2), prefix="b")
    with Listing([("a", a.fetch, [Chain()]), ("b", b.fetch, [Chain(lt=T0 + 150)])], concurrency=4) as pages:
        listed = [(p.key, p.resume) for p in pages]
    keys = [key for key, _ in listed]
    assert keys == sorted(keys) and set(keys) == {"a", "b"}
    assert [key for key, resume in listed if resume is None] == ["a", "b"]
    assert all(c.lt is None or c.lt <= T0 + 150 for c in b.calls)


def test_resumes_several_saved_chains():
    stripe = _Stripe(_spread())
    cursor = next(o["id"] for o in stripe.objects if o["created"] < T0 + 30)
    chains = [Chain(gte=T0 + 30, lt=T0 + 1000, after=cursor), Chain(gte=0, lt=T0 + 30)]
    listed, _ = _listed(stripe, chains, concurrency=4)
    ids = [i for _, page, _ in listed for i in page]
    expected = [o["id"] for o in stripe.objects if o["created"] < T0 + 30]
    assert sorted(ids) == sorted(expected) and len(ids) == len(set(ids))


def test_cuts_near_the_data_in_even_pieces_and_never_a_short_range():
    page = [{"id": "x", "created": T0 + 10}, {"id": "y", "created": T0}]
    # Unknown floor (the epoch): pieces of 4 pages at this page's density, the lowest the rest.
    assert cuts(Chain(gte=0), page, 3) == [T0 + 1 - 40, T0 + 1 - 80]
    assert cuts(Chain(gte=0), page, 1) == []  # no free slot: not cut
    # A floor close by: even pieces, never under one span.
    assert cuts(Chain(gte=T0 - 30), page, 2) == [T0 + 1 - 15]
    assert cuts(Chain(gte=T0 - 30), page, 8) == [T0 + 1 - 10, T0 + 1 - 20]  # the lowest: 11 s
    assert cuts(Chain(gte=T0 - 19), page, 8) == []  # less than two spans left
    crowded = [{"id": "x", "created": T0}, {"id": "y", "created": T0}]
    assert cuts(Chain(gte=T0 - 1), crowded, 8) == []
    assert cuts(Chain(gte=T0 - 2), crowded, 8) == [T0, T0 - 1]  # one second each: gte < b <= last


def test_request_ids_reach_the_callers_context_and_threads_stop():
    stripe = _Stripe(_spread())
    with request_ids.collect() as ids:
        listed, _ = _listed(stripe, [Chain()], concurrency=4)
    assert sorted(ids) == sorted(f"req_{n}" for n in range(1, len(stripe.calls) + 1))
    assert not _fetch_threads()


def test_the_next_page_is_fetched_while_the_caller_handles_this_one():
    fetched_second = threading.Event()

    def fetch(chain):
        if chain.after:
            fetched_second.set()
            return [{"id": "x_2", "created": T0}], False
        return [{"id": "x_1", "created": T0}], True

    with Listing([("x", fetch, [Chain()])], concurrency=1) as pages:
        for page in pages:
            if page.objects[0]["id"] == "x_1":
                # Still handling page 1: page 2 is asked for meanwhile (the wait only bounds a hang).
                assert fetched_second.wait(10)
    assert not _fetch_threads()


@pytest.mark.parametrize("fail_call", [1, 2, 5, 9])
def test_a_fetch_error_surfaces_after_the_pages_fetched_and_their_state_resumes_the_rest(fail_call):
    created = _spread(seed=3)
    stripe = _Stripe(created, fail_call=fail_call)
    handled, resume = [], [Chain(lt=T0 + 1000).to_json()]
    with pytest.raises(StripeUnavailable):
        with Listing([("k", stripe.fetch, [Chain(lt=T0 + 1000)])], concurrency=4) as pages:
            for page in pages:
                handled += [o["id"] for o in page.objects]
                resume = page.resume
    assert not _fetch_threads()
    assert len(handled) < len(created)
    # The failed call's page was never handed over, nor anything after it in its chain.
    rest, _ = _listed(_Stripe(created), [Chain.from_json(c) for c in resume], concurrency=4)
    after = [i for _, page, _ in rest for i in page]
    assert sorted(handled + after) == sorted(o["id"] for o in stripe.objects)


def test_leaving_early_stops_the_threads():
    stripe = _Stripe(_spread())
    with pytest.raises(RuntimeError):
        with Listing([("k", stripe.fetch, [Chain()])], concurrency=4) as pages:
            for _ in pages:
                raise RuntimeError("the caller's database failed")
    assert len(stripe.calls) <= 8  # at most 2 x concurrency pages ahead
    assert not _fetch_threads()


def test_at_most_twice_the_concurrency_pages_are_fetched_ahead_of_the_writer():
    stripe = _Stripe(_spread(), limit=2)
    with Listing([("k", stripe.fetch, [Chain()])], concurrency=3) as pages:
        handed = 0
        for _ in pages:
            handed += 1
            threading.Event().wait(0.005)  # a slow writer: fetches run ahead as far as allowed
            assert len(stripe.calls) - handed <= 6


def test_the_next_phase_is_fetched_while_this_one_is_handed_over_yet_handed_over_after_it():
    b_fetched = threading.Event()
    a = _Stripe([T0 + s for s in range(30)], prefix="a")

    def fetch_b(chain):
        b_fetched.set()
        return [{"id": "b_0", "created": T0}], False

    keys = []
    with Listing([("a", a.fetch, [Chain()]), ("b", fetch_b, [Chain()])], concurrency=4) as pages:
        for page in pages:
            if not keys:
                # Still on phase a's first page: b (one page) is listed meanwhile on an idle slot.
                assert b_fetched.wait(10)
            keys.append(page.key)
    assert keys == ["a"] * keys.count("a") + ["b"] and keys.count("a") >= 6
    assert not _fetch_threads()


def test_an_error_in_a_phase_hands_over_none_of_the_next_phases_pages():
    a = _Stripe(_spread(seed=5), prefix="a", fail_call=3)
    b = _Stripe([T0, T0 + 1], prefix="b")
    keys = []
    with pytest.raises(StripeUnavailable):
        with Listing([("a", a.fetch, [Chain()]), ("b", b.fetch, [Chain()])], concurrency=4) as pages:
            for page in pages:
                keys.append(page.key)
    assert set(keys) == {"a"}
    assert not _fetch_threads()


def test_a_phase_listing_ahead_keeps_its_chain_until_it_is_handed_over():
    """Cutting a phase whose pages must wait only stalls chains and takes the slots from
    the phase being handed over: it is cut once it is the first."""
    a = _Stripe([T0 + s for s in range(40)], prefix="a")
    b = _Stripe([T0 + s for s in range(200)], prefix="b")
    with Listing([("a", a.fetch, [Chain()]), ("b", b.fetch, [Chain()])], concurrency=4) as pages:
        for page in pages:
            if page.key == "a" and page.resume is None:
                ahead = list(b.calls)
    assert ahead and all((c.gte, c.lt) == (0, None) for c in ahead)
    assert len({(c.gte, c.lt) for c in b.calls}) > 1  # cut afterwards
