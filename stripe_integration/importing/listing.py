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

Splitting (adaptive: how objects spread over time is not known beforehand). A phase
starts with the chains it is given (one over its whole range on a fresh start). When a
chain's page comes back with has_more and fewer than `concurrency` chains of the phase
are active, the chain's remaining range [gte, last], `last` the `created` of the page's
last object, is cut at `mid` (gte < mid <= last): the chain keeps its cursor and lists
[mid, lt) on; a new chain lists [gte, mid) from its top. The objects of [gte, mid) are all
older than the cursor (they were not listed yet) and the chain's own objects after the
cursor are those of [mid, last]: an exact partition again. `mid` is the midpoint of
[gte, last], or higher, so that the chain keeps about `KEEP_PAGES` pages at the density
of the page just listed (`span`, the seconds its objects cover): a range with an unknown
floor (gte 0, the epoch) is then cut near the data instead of at 1998. A range shorter
than two spans is not cut (the chain would end in a page anyway).

Resume. `ListedPage.resume` is the phase's resume state once that page is written: every
unfinished chain of the phase with the cursor of its last page handed over (a chain with
none yet starts at its top), or None when that page was the phase's last. Pages are
handed over in the order their fetches ended, so each chain's pages come in order, and a
page that split its chain always comes before any page of the new chain: the new chain
enters the resume state with that page (its window is cut off the old chain's by the same
write). Saved with each page in the page's transaction, the resume state lists exactly
what is left of the phase; a killed import resumes every chain in it.

Phases are listed one after the other: the next phase's first fetch starts when every
chain of the phase before has listed its last page (while the writer may still be
writing them), and all of a phase's pages are handed over before any of the next phase.

Threads and memory. A pool of `concurrency` threads only calls `fetch(chain)` (HTTP
through the gateway), never the database; each runs in a copy of the caller's context so
request ids still reach the caller's run (request_ids). At most 2 x concurrency pages are
fetched or in flight without having been handed over; a chain whose next page would pass
that waits. With concurrency 1 this is one fetch thread listing the next page while the
caller writes this one.

Errors. The first error a fetch raises stops new fetches; the pages already fetched, and
those of fetches still in flight that succeed, are handed over first (each with its
resume state), then the error is raised from the iteration: the saved state then covers
every object not written. Leaving the `with` block (done, error, or a break) waits for the
fetches in flight, whose pages are dropped, and stops the threads.
"""
from __future__ import annotations

import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

KEEP_PAGES = 4  # pages a chain keeps when it is cut (at the density of its last page)


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
    has_more: bool
    resume: list[dict] | None  # the phase's chains once this page is written; None: phase done


def cut(chain: Chain, objects: list[dict]) -> int | None:
    """Where to cut `chain`'s remaining range after this full page (see the module doc),
    or None to leave it whole."""
    first, last = objects[0].get("created"), objects[-1].get("created")
    if not isinstance(first, int) or not isinstance(last, int):
        return None
    span = max(first - last, 1)
    if last - chain.gte < 2 * span:
        return None
    return max((chain.gte + last + 1) // 2, last - KEEP_PAGES * span)


class _Phase:
    """One listing: its fetch, the chains it starts with, how many chains still have a
    page to fetch (`active`), and `saved`: the chains as the pages handed over so far
    leave them (the resume state), by chain number."""

    def __init__(self, key: str, fetch: Fetch, chains: Iterable[Chain]):
        self.key = key
        self.fetch = fetch
        self.start = [Chain(c.gte, c.lt, c.after) for c in chains]
        if not self.start:
            raise ValueError(f"{key}: a listing needs at least one chain")
        self.active = 0  # chains with a page still to fetch
        self.saved: dict[int, Chain] = dict(enumerate(Chain(c.gte, c.lt, c.after) for c in self.start))
        self.next_id = len(self.start)


class Listing:
    def __init__(self, listings: Iterable[tuple[str, Fetch, Iterable[Chain]]], *, concurrency: int = 1):
        self._listings = iter(listings)
        self.concurrency = max(1, int(concurrency))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="import-fetch")
        self.waited = 0.0  # seconds the caller spent waiting for a page
        self.pages = 0  # list calls answered
        self.most_chains = 0  # the most chains of one phase listing at once

    def __enter__(self) -> "Listing":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self) -> Iterator[ListedPage]:
        cap = 2 * self.concurrency
        in_flight: dict[Future, tuple[_Phase, int, Chain]] = {}
        waiting: deque[tuple[_Phase, int, Chain]] = deque()  # chains whose next fetch waits for room
        done: deque[tuple[_Phase, int, Chain, list[dict], bool, tuple | None]] = deque()  # fetched, not handed
        error: BaseException | None = None
        fetching: _Phase | None = None

        def submit():
            while waiting and error is None and len(in_flight) + len(done) < cap:
                phase, cid, chain = waiting.popleft()
                request = Chain(chain.gte, chain.lt, chain.after)
                future = self._pool.submit(contextvars.copy_context().run, phase.fetch, request)
                in_flight[future] = (phase, cid, request)

        def next_phase():
            nonlocal fetching
            listing = next(self._listings, None)
            fetching = _Phase(*listing) if listing is not None else None
            if fetching is not None:
                for cid, chain in enumerate(fetching.start):
                    waiting.append((fetching, cid, chain))
                fetching.active = len(fetching.start)
                self.most_chains = max(self.most_chains, fetching.active)

        def collect(futures):
            nonlocal error
            for future in futures:
                phase, cid, chain = in_flight.pop(future)
                try:
                    objects, has_more = future.result()
                except Exception as exc:  # the gateway's errors, or a bug: stop listing, raise later
                    if error is None:
                        error = exc
                    waiting.clear()
                    continue
                self.pages += 1
                more = has_more and bool(objects)
                after, child = None, None
                if more:
                    after = Chain(chain.gte, chain.lt, objects[-1]["id"])
                    mid = cut(chain, objects) if phase.active < self.concurrency else None
                    if mid is not None:
                        child = (phase.next_id, Chain(chain.gte, mid))
                        phase.next_id += 1
                        after.gte = mid
                        phase.active += 1
                        waiting.append((phase, child[0], child[1]))
                    waiting.append((phase, cid, after))
                    self.most_chains = max(self.most_chains, phase.active)
                else:
                    phase.active -= 1
                done.append((phase, cid, after, objects, has_more, child))

        next_phase()
        while True:
            # Fetches that ended while the caller wrote: their chains' next pages start now.
            collect([f for f in list(in_flight) if f.done()])
            if fetching is not None and not fetching.active and error is None:
                # Every chain of the phase has listed its last page: the next phase's
                # fetches start, even while the writer still has pages of this one.
                next_phase()
            submit()
            if done:
                phase, cid, after, objects, has_more, child = done.popleft()
                if after is None:
                    phase.saved.pop(cid, None)
                else:
                    phase.saved[cid] = after
                if child is not None:
                    phase.saved[child[0]] = child[1]
                resume = [c.to_json() for _, c in sorted(phase.saved.items())] if phase.saved else None
                yield ListedPage(phase.key, objects, has_more, resume)
                continue
            if not in_flight:
                if error is not None:
                    raise error
                return
            start = time.perf_counter()
            finished, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
            self.waited += time.perf_counter() - start
            collect(finished)
