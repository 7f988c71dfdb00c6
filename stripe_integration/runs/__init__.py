"""Runs and events (issue 15, m3ter) and auto-disable: every Stripe-facing job is recorded.

Owns `IntegrationRun` / `IntegrationEvent` and the auto-disable state on
`IntegrationSettings`. Calls the gateway only for its exception types and its request-id
sink (`gateway.request_ids`); its re-enable calls back into catalog, invoicing and
webhooks. Called by every job that talks to Stripe, and by its pages (views, admin).

How a job uses it (catalog sync, invoice push, catch-up do; import and payout sync must)::

    from stripe_integration.runs import RunKind, track_run

    with track_run(business, RunKind.IMPORT, livemode=connection.livemode, subject="import:12") as run:
        if run.disabled:          # the integration is disabled: a "disabled" run is recorded;
            return ...            # return WITHOUT calling Stripe (the job waits for re-enable)
        ...
        run.count("created")      # counts (any names): run.count("skipped", 3)
        run.log("Customers: page 3 of 9")
        run.fail(exc)             # a failure the job handles itself (it does not raise)
        run.fail("Service X has no price", kind=EventKind.MISSING_MAPPING, action=EventAction.MAP_SERVICE,
                 action_url="/admin/services/service/7/change/")

A job queued for later can show as `waiting` meanwhile: `run_wait(business, kind,
subject=...)` when queuing, then `track_run(..., subject=<the same>, resume=True)` when it
runs (the whole-catalog sync does).

An exception leaving the block is classified from the gateway's exception types (see
`classify`: auth -> auth_failed + reconnect, rate limit -> rate_limited, timeout ->
timed_out, other Stripe errors -> error + retry), recorded with its event, and re-raised
unchanged. A task that retries transient failures itself runs the job inside
`retry_planned(...)`: a transient failure (rate limited, unreachable, 5xx, timed out) then
ends the run `awaiting_retry`, outside the auto-disable streak, and the retry is a run of
its own that ends complete or failed. Stripe request ids of the calls made inside the block are kept on the run.
The run's end updates the business's streak of failed runs; `auto_disable_after` of them
in a row disable the integration (`disable.py`), and `integration_reenable` retries what
waited. Actions a person starts call `integration_require_enabled(business=...)` first:
while disabled (or paused) it raises `IntegrationDisabled`, which `runs.middleware`
answers with a message and a link to re-enable. Webhook processing records one run per business per processed batch
(`webhook_batch`), a few queries per batch whatever its size.
"""
from ..models import EventAction, EventKind, RunKind, RunStatus  # noqa: F401
from .disable import IntegrationDisabled, integration_require_enabled  # noqa: F401
from .tracking import (  # noqa: F401
    MissingMapping, RunTracker, classify, current_run, retry_planned, run_wait, track_run, webhook_batch,
)
