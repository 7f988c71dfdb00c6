"""What the import did with one Stripe object, counted on the job and remembered in
`ImportedObject` (so a second run recognises it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..models import ImportedObject, StripeImport


@dataclass
class Page:
    """One page's work: the job, the business's rules, and the mapping rows it adds."""

    job: StripeImport
    rules: object
    gw: object = None  # the gateway, for the few calls beside the page's list
    count_seen: bool = True  # False on the last pass over what is new: seen ones were counted
    known: dict[str, ImportedObject] = field(default_factory=dict)
    new: list[ImportedObject] = field(default_factory=list)

    @property
    def business(self):
        return self.job.business

    @property
    def connection(self):
        return self.job.connection

    def record(self, kind: str, stripe_id: str, outcome: str, *, local_id: int | None = None, reason: str = "",
               ref: str = "") -> None:
        counts = self.job.counts.setdefault(kind, {"created": 0, "matched": 0, "skipped": 0, "reasons": {}})
        counts[outcome] += 1
        if reason:
            key = f"{outcome}: {reason}"
            counts["reasons"][key] = counts["reasons"].get(key, 0) + 1
        # By ids: the rows are only written (crm.bulk.insert_many) and read for their own fields.
        row = ImportedObject(business_id=self.job.business_id, connection_id=self.job.connection_id, kind=kind,
                             stripe_id=stripe_id, local_id=local_id, outcome=outcome, reason=reason[:200], ref=ref)
        self.new.append(row)
        self.known[stripe_id] = row

    def seen(self, kind: str, stripe_id: str) -> ImportedObject | None:
        """Handled by an earlier run (or page): counted as matched, nothing redone."""
        row = self.known.get(stripe_id)
        if row is not None and self.count_seen:
            counts = self.job.counts.setdefault(kind, {"created": 0, "matched": 0, "skipped": 0, "reasons": {}})
            counts["matched" if row.outcome != "skipped" else "skipped"] += 1
            key = ("matched: imported before" if row.outcome != "skipped" else f"skipped: {row.reason}")
            counts["reasons"][key] = counts["reasons"].get(key, 0) + 1
        return row
