"""Stripe request ids of the calls made in the current context, for the run that made
them (issue 15, `stripe_integration.runs.track_run`).

`collect()` opens a list that every Stripe call logged by `client._log_call` (one per
attempt, failed ones too) appends its request id to, until the block ends. Outside such
a block nothing is kept. A ContextVar: threads and Celery tasks each see their own.
No SDK import here: the runs package uses it without touching `stripe`.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_sink: ContextVar[list | None] = ContextVar("stripe_request_ids", default=None)


def note(request_id: str | None) -> None:
    sink = _sink.get()
    if sink is not None and request_id:
        sink.append(request_id)


@contextmanager
def collect():
    """Yield the list the calls made inside the block add their request ids to (nested
    blocks each get their own; the outer one does not see the inner one's)."""
    ids: list[str] = []
    token = _sink.set(ids)
    try:
        yield ids
    finally:
        _sink.reset(token)
