"""The import's listings: each phase listed by several cursor chains at once, the pages
handed to ONE caller (the writer) in an order that keeps a resume state exact.

Why: a Stripe list call of 100 objects takes 0.3-1 s, so one cursor chain lists 1-3
pages a second, far below the rate limit (100 requests/s live). Several chains, each over
its own `created` window, keep up to `concurrency` requests in flight; the gateway's
shared limiter (gateway/ratelimit.py) keeps the rate.

Chains. A `Chain` lists the objects with `created` in [gte, lt) (integer seconds; lt None
= no upper bound), newest first, 100 a call, after its cursor `after`. Windows of one
phase never overlap, so together they partition the phase's range: nothing is listed
twice or missed, however many objects share one second (a chain continuing with
`starting_after` keeps its own bounds, so its next page holds only its window's objects
after the cursor, whatever shares the cursor's second).

Cutting (adaptive: how objects spread over time is not known beforehand). A phase
starts with the chains it is given (one over its whole range on a fresh start). When a
chain's page comes back with has_more while the phase being handed over (the only one
cut) has fewer than `concurrency` chains, the chain's remaining range [gte, last],
`last` the `created` of the page's last object, is cut into up to (concurrency - the
phase's chains + 1) pieces at b1 > b2 > ... > bk, all in (gte, last]: the chain keeps
its cursor and lists [b1, lt) on; new chains list [b2, b1), ..., [gte, bk) from their
top. The objects of [gte, b1) are all older than the cursor (not listed yet) and the
chain's own objects after the cursor are those of [b1, last]: an exact partition again.
The pieces are `w` seconds wide: about `KEEP_PAGES` pages at the density of the page
just listed (`span`, the seconds its objects cover), or an even share of the range if
that is less, never under one span; the lowest piece takes what is left (at least a
piece's width). So a range with an unknown floor (gte 0, the epoch) is cut near the
data, not at 1998, and its lowest chain cuts again when its own pages come back. A range
shorter than two spans is not cut (the chain would end in a page or so anyway). Objects
sharing one second are listed by one chain: no window splits a second.

Resume. `ListedPage.resume` is the phase's resume state once that page is written: every
unfinished chain of the phase with the cursor of its last page handed over (a chain with
none yet starts at its top), or None when that page was the phase's last. A phase's
pages are handed over in the order their fetches ended, so each chain's pages come in
order, and a page that cut its chain always comes before any page of the new chains:
they enter the resume state with that page (their windows are cut off the old chain's by
the same write). Saved with each page in the page's transaction, the resume state lists
exactly what is left of the phase; a killed import resumes every chain in it.

Phases. Every page of a phase is handed over before any of the next. Fetching, though,
runs ahead: the next phase starts listing, with the chains it was given, as soon as
fewer than `concurrency` chains are listing (a phase's tail, or a phase of one page,
leaves slots idle), its pages held until the phases before are handed over; it is cut
once it is the phase being handed over.

Threads and memory. A pool of `concurrency` threads only calls `fetch(chain)` (HTTP
through the gateway), never the database; each runs in a copy of the caller's context so
request ids still reach the caller's run (request_ids). At most `concurrency` fetches are
in flight. Pages fetched or in flight not yet handed over: at most 2 x concurrency for
the phase being handed over, and as many again for the phases after it (a chain whose
next page would pass that waits). With concurrency 1 this is one fetch thread listing
the next page while the caller writes this one.

Errors. The first error a fetch raises stops new fetches; the pages already fetched, and
those of fetches still in flight that succeed, are handed over first as far as the phase
order allows (each with its resume state), then the error is raised from the iteration:
the saved state then covers every object not written. Leaving the `with` block (done,
error, or a break) waits for the fetches in flight, whose pages are dropped, and stops
the threads.
"""
from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

KEEP_PAGES = 4  # pages a piece holds when a chain is cut (at the density of its last page)


@dataclass
class Chain:
    """One cursor chain: the objects created in [gte, lt), listed after `after`."""

    gte: int = 0
    lt: int | None = None
    after: str = ""

    def params(self) -> dict:
        """The list call's `created` filter for this window (none for the whole range)."""
        created = {}
        if self.gte:
            created["gte"] = self.gte
        if self.lt is not None:
            created["lt"] = self.lt
        return {"created": created} if created else {}

    def to_json(self) -> dict:
        return {"gte": self.gte, "lt": self.lt, "after": self.after}

    @classmethod
    def from_json(cls, data: dict) -> "Chain":
        lt = data.get("lt")
        return cls(gte=int(data.get("gte") or 0), lt=None if lt is None else int(lt), after=data.get("after") or "")


Fetch = Callable[[Chain], tuple[list[dict], bool]]


@dataclass
class ListedPage:
    key: str
    objects: list[dict]
    resume: list[dict] | None  # the phase's chains once this page is written; None: phase done


def cuts(chain: Chain, objects: list[dict], pieces: int) -> list[int]:
    """Where to cut `chain`'s remaining range after this full page into at most `pieces`
    (see the module doc): b1 > b2 > ... > bk, all in (gte, last], the lowest piece
    [gte, bk) as wide as the others at least; none to leave it whole."""
    first, last = objects[0].get("created"), objects[-1].get("created")
    if pieces < 2 or not isinstance(first, int) or not isinstance(last, int):
        return []
    span = max(first - last, 1)
    remaining = last - chain.gte
    if remaining < 2 * span:
        return []
    width = max(span, min(KEEP_PAGES * span, remaining // pieces))
    bounds, bound = [], last + 1 - width
    while bound - chain.gte >= width and len(bounds) < pieces - 1:
        bounds.append(bound)
        bound -= width
    return bounds


class _Phase:
    """One listing: its fetch, its chains waiting for a fetch, fetched pages not handed
    over yet (`done`), how many chains still have a page to fetch (`active`), and
    `saved`: the chains as the pages handed over so far leave them (the resume state),
    by chain number."""

    def __init__(self, key: str, fetch: Fetch, chains: Iterable[Chain]):
        self.key = key
        self.fetch = fetch
        start = [Chain(c.gte, c.lt, c.after) for c in chains]
        if not start:
            raise ValueError(f"{key}: a listing needs at least one chain")
        self.waiting: deque[tuple[int, Chain]] = deque(enumerate(start))
        self.done: deque[tuple[int, Chain | None, list[dict], list]] = deque()
        self.in_flight = 0
        self.active = len(start)
        self.saved: dict[int, Chain] = {cid: Chain(c.gte, c.lt, c.after) for cid, c in enumerate(start)}
        self.next_id = len(start)

    def hand_over(self) -> ListedPage:
        cid, after, objects, children = self.done.popleft()
        if after is None:
            self.saved.pop(cid, None)
        else:
            self.saved[cid] = after
        self.saved.update(children)
        resume = [c.to_json() for _, c in sorted(self.saved.items())] if self.saved else None
        return ListedPage(self.key, objects, resume)


class Listing:
    def __init__(self, listings: Iterable[tuple[str, Fetch, Iterable[Chain]]], *, concurrency: int = 1):
        self._listings = iter(listings)
        self.concurrency = max(1, int(concurrency))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="import-fetch")
        self.waited = 0.0  # seconds the caller spent waiting for a page
        self.pages = 0  # list calls answered
        self.most_chains = 0  # the most chains listing at once (all phases started)

    def __enter__(self) -> "Listing":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[ListedPage]:
        n, cap = self.concurrency, 2 * self.concurrency
        started: list[_Phase] = []  # in order; the first is the one being handed over
        in_flight: dict[Future, tuple[_Phase, int, Chain]] = {}
        error: BaseException | None = None
        more_listings = True

        def active() -> int:
            return sum(p.active for p in started)

        def ahead() -> int:  # pages of the phases after the first, fetched or in flight
            return sum(len(p.done) + p.in_flight for p in started[1:])

        def start_phases():
            nonlocal more_listings
            while more_listings and error is None and (not started or (active() < n and ahead() < cap)):
                listing = next(self._listings, None)
                if listing is None:
                    more_listings = False
                else:
                    started.append(_Phase(*listing))

        def submit():
            for index, phase in enumerate(started):
                while phase.waiting and error is None and len(in_flight) < n and (
                        phase.in_flight + len(phase.done) < cap if index == 0 else ahead() < cap):
                    cid, chain = phase.waiting.popleft()
                    request = Chain(chain.gte, chain.lt, chain.after)
                    future = self._pool.submit(contextvars.copy_context().run, phase.fetch, request)
                    in_flight[future] = (phase, cid, request)
                    phase.in_flight += 1

        def collect(futures):
            nonlocal error
            for future in futures:
                phase, cid, chain = in_flight.pop(future)
                phase.in_flight -= 1
                try:
                    objects, has_more = future.result()
                except Exception as exc:  # the gateway's errors, or a bug: stop listing, raise later
                    if error is None:
                        error = exc
                    for p in started:
                        p.waiting.clear()
                    continue
                self.pages += 1
                after, children = None, []
                if has_more and objects:
                    after = Chain(chain.gte, chain.lt, objects[-1]["id"])
                    # Only the phase being handed over is cut: a phase listing ahead keeps its
                    # chains (its pages wait anyway), leaving the slots to the first.
                    bounds = cuts(chain, objects, n - phase.active + 1) if phase is started[0] else []
                    if bounds:
                        after.gte = bounds[0]
                        for high, low in zip(bounds, [*bounds[1:], chain.gte]):
                            children.append((phase.next_id, Chain(low, high)))
                            phase.next_id += 1
                        phase.active += len(children)
                    phase.waiting.append((cid, after))
                    phase.waiting.extend(children)
                else:
                    phase.active -= 1
                phase.done.append((cid, after, objects, children))
            self.most_chains = max(self.most_chains, active())

        while True:
            # Fetches that ended while the caller wrote: their chains' next pages start now.
            collect([f for f in list(in_flight) if f.done()])
            start_phases()
            self.most_chains = max(self.most_chains, active())
            submit()
            if started and started[0].done:
                page = started[0].hand_over()
                if page.resume is None:
                    started.pop(0)
                yield page
                continue
            if not in_flight:
                if error is not None:
                    raise error
                if started:  # cannot happen: the first phase always has a page to fetch or fetched
                    raise RuntimeError(f"import listing stalled in {started[0].key}")
                return
            start = time.perf_counter()
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            self.waited += time.perf_counter() - start
            collect(finished)
