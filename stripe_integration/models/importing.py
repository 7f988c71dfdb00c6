"""The import of a connected account's history (issue 15, Upflow's rules).

`StripeImport` is one import job: its status, the phase it has reached and that phase's
unfinished cursor chains (`chains`, saved with each page's writes, so a killed import
resumes where it stopped; see importing/listing.py), counts per
object type of what was created, matched and skipped (with the reasons), and the moment
it started, from which the account's events are replayed at the end.
`ImportRules` are the business's choices (Upflow's defaults). `ImportedObject` maps every
Stripe object the import handled to its local row, unique per connection and Stripe id:
a second run finds it and creates nothing.
"""
from django.conf import settings
from django.db import models

from crm.models import BusinessOwned


class ImportStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    RUNNING = "running", "Running"
    COMPLETE = "complete", "Complete"
    ERROR = "error", "Stopped on an error"


IMPORT_TRANSITIONS = {
    ImportStatus.WAITING: {ImportStatus.RUNNING, ImportStatus.ERROR},
    ImportStatus.RUNNING: {ImportStatus.RUNNING, ImportStatus.COMPLETE, ImportStatus.ERROR},
    ImportStatus.ERROR: {ImportStatus.RUNNING},  # resumed from its saved chains
    ImportStatus.COMPLETE: set(),
}

# The phases, in order: each lists one kind of Stripe object, page by page.
IMPORT_PHASES = ("customers", "products", "prices", "invoices", "invoice_payments", "payments", "refunds", "disputes",
                 "credit_notes",
                 "replay")


class UncollectibleAs(models.TextChoices):
    PAID = "paid", "Paid (written off, Upflow's default)"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"


def default_contact_keys():
    return ["cc", "to"]


class ImportRules(BusinessOwned):
    """How the import treats what it finds (Upflow's rules as defaults)."""

    business = models.OneToOneField("crm.Business", on_delete=models.CASCADE, related_name="stripe_import_rules")
    import_drafts = models.BooleanField("Import draft invoices", default=False,
                                        help_text="Upflow leaves drafts out: they are not owed yet.")
    import_void = models.BooleanField("Import void invoices (as void)", default=True)
    uncollectible_as = models.CharField("Uncollectible invoices become", max_length=16,
                                        choices=UncollectibleAs.choices, default=UncollectibleAs.PAID)
    contact_metadata_keys = models.JSONField(
        "Metadata keys with extra contact e-mails", default=default_contact_keys, blank=True,
        help_text='Customer metadata keys whose e-mails (comma or space separated) become extra contacts, e.g. ["cc", "to"].')

    class Meta:
        verbose_name = "Stripe import rules"
        verbose_name_plural = "Stripe import rules"

    def __str__(self):
        return f"Import rules of {self.business}"

    @classmethod
    def for_business(cls, business):
        obj, _ = cls.objects.get_or_create(business=business)
        return obj


class StripeImport(BusinessOwned):
    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.WAITING, db_index=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Events created at or after this moment are replayed at the end (no gap between the
    # listing and the webhooks): set when the import first starts, kept on resume.
    replay_from = models.DateTimeField(null=True, blank=True)
    phase = models.CharField(max_length=16, default=IMPORT_PHASES[0])
    # The phase's unfinished chains once the last written page is: [{"gte": 1700000000,
    # "lt": 1760000000, "after": "in_..."}, ...] (importing/listing.py); empty = the phase
    # from its start (or, for a job saved before chains, from `cursor`).
    chains = models.JSONField(default=list, blank=True,
                              help_text="Resume state: the phase's unfinished cursor chains (created window, cursor).")
    cursor = models.CharField(max_length=255, blank=True,
                              help_text="Resume state of jobs saved before chains: the last Stripe id of the phase done "
                                        "(starting_after of its one listing). Cleared by the next page written.")
    # {"customers": {"created": 3, "matched": 1, "skipped": 0, "reasons": {"...": 1}}, ...}
    counts = models.JSONField(default=dict, blank=True)
    pages = models.PositiveIntegerField(default=0, help_text="List calls made.")
    summary = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "Stripe import"
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"Import {self.pk} of {self.connection.stripe_user_id} ({self.get_status_display().lower()})"

    def clean(self):
        self.check_same_business(connection=getattr(self, "connection", None))

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.COMPLETE:
            return 100
        index = IMPORT_PHASES.index(self.phase) if self.phase in IMPORT_PHASES else 0
        return round(100 * index / len(IMPORT_PHASES))

    def count_rows(self):
        """[(type, created, matched, skipped, [(reason, n), ...])] for the summary."""
        rows = []
        for kind in IMPORT_PHASES[:-1]:
            c = self.counts.get(kind) or {}
            rows.append((kind.replace("_", " "), c.get("created", 0), c.get("matched", 0), c.get("skipped", 0),
                         sorted((c.get("reasons") or {}).items())))
        return rows


class ImportedObject(BusinessOwned):
    """A Stripe object the import handled, and what it became locally (or why not)."""

    connection = models.ForeignKey("stripe_integration.StripeConnection", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    stripe_id = models.CharField(max_length=255)
    local_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10)  # created / matched / skipped
    reason = models.CharField(max_length=200, blank=True)
    # A Stripe object it points to: the PaymentIntent an invoice payment is for.
    ref = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "stripe_id"], name="uniq_imported_object")]
        indexes = [models.Index(fields=["connection", "ref"])]

    def __str__(self):
        return f"{self.stripe_id} -> {self.kind} {self.local_id} ({self.outcome})"
