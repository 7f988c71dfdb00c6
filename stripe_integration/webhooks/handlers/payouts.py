"""Handlers of payout events (payout.created / updated / paid / failed): the payout as
Stripe has it now, and once it is paid the balance transactions it carried, through the
payout sync (`stripe_integration.payouts.sync`), idempotent like every handler."""
from __future__ import annotations

from ...gateway.client import NotFound
from ...gateway.payouts import payout_retrieve
from ...payouts.sync import payout_sync
from ..context import EventContext, EventIgnored, obj_id


def on_payout(ctx: EventContext) -> str:
    payout_id = obj_id(ctx.obj)
    try:
        payout = payout_retrieve(ctx.gw, account=ctx.account, payout_id=payout_id)
    except NotFound:
        raise EventIgnored(f"Stripe has no payout {payout_id}.") from None
    counts = payout_sync(connection=ctx.connection, payout=payout, gw=ctx.gw)
    return (f"payout {payout_id}: {payout['status']}; {counts['items_created']} item(s) new, "
            f"{counts['items_updated']} updated, {counts['exceptions']} exception(s)")


HANDLERS = {
    "payout.created": on_payout,
    "payout.updated": on_payout,
    "payout.paid": on_payout,
    "payout.failed": on_payout,
}
