"""Pages of the import's listings, the next one fetched while the caller handles this one.

`Prefetch(listings)` yields (key, objects, has_more) for each page of each listing in
turn; a listing is (key, fetch, starting_after) with `fetch(after) -> (objects, has_more)`,
one list call. Right before a page is handed to the caller, ONE background thread starts
fetching the following page (the next page of the same listing after the page's last id,
or else the first page of the next listing), so Stripe's answer time overlaps the
caller's database work. That thread only calls `fetch` (HTTP through the gateway and its
shared, thread-safe rate limiter), never the database; it runs in a copy of the caller's
context, so the request ids it gets still reach the caller's run (request_ids).

An error raised by a fetch surfaces from the iteration when the caller asks for that
page, i.e. after every page before it was handed over, as if fetched there. Leaving the
`with` block (done, error, or a break) waits for the fetch in flight, whose page is
dropped, and stops the thread.
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

Fetch = Callable[[str], tuple[list[dict], bool]]


class Prefetch:
    def __init__(self, listings: Iterable[tuple[str, Fetch, str]]):
        self._listings = iter(listings)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-fetch")
        self.waited = 0.0  # seconds the caller spent waiting for a page
        self.pages = 0

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _start(self, listing: tuple[str, Fetch, str] | None) -> tuple[str, Fetch, Future] | None:
        if listing is None:
            return None
        key, fetch, after = listing
        return key, fetch, self._pool.submit(contextvars.copy_context().run, fetch, after)

    def __iter__(self) -> Iterator[tuple[str, list[dict], bool]]:
        pending = self._start(next(self._listings, None))
        while pending is not None:
            key, fetch, future = pending
            start = time.perf_counter()
            try:
                objects, has_more = future.result()
            finally:
                self.waited += time.perf_counter() - start
            self.pages += 1
            following = (key, fetch, objects[-1]["id"]) if has_more and objects else next(self._listings, None)
            pending = self._start(following)
            yield key, objects, has_more
