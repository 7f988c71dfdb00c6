"""`python manage.py stripe_invoice_unbilled --business <slug> [--contact <id>] [--currency <code>]`

Month-end in one go: every unbilled billable of the business (optionally of one contact or
currency) becomes invoices, one per bill-to and currency (at most 250 lines each), pushed
to Stripe right here. Prints how many invoices it made, their totals per currency, what
was left out and why, and any failure; exits non-zero when an invoice failed.

Safe to run twice: billables already invoiced are not invoiced again, so a second run makes
nothing new. Safe to interrupt: building the invoices is one transaction (all or nothing),
and every run first finishes the pushes an earlier run (or a worker) left unfinished,
taking them over; the push's recovery and idempotency keys make that exactly-once.
"""
from collections import Counter, defaultdict
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from crm.models import Business, Contact
from finance.invoices import NothingToInvoice
from finance.money import UnsupportedCurrency, format_money, normalize_currency
from stripe_integration.invoicing import push as invoicing
from stripe_integration.connect.oauth import connection_get_active


class Command(BaseCommand):
    help = "Invoice every unbilled billable of a business in Stripe (safe to run again and to interrupt)."

    def add_arguments(self, parser):
        parser.add_argument("--business", required=True, help="The business's slug.")
        parser.add_argument("--contact", type=int, help="Only this bill-to contact (its id).")
        parser.add_argument("--currency", help="Only this currency, e.g. EUR.")

    def handle(self, *args, business, contact=None, currency=None, **options):
        found = Business.objects.filter(slug=business).first()
        if found is None:
            raise CommandError(f"No business has the slug {business!r}.")
        bill_to = None
        if contact is not None:
            bill_to = Contact.objects.filter(business=found, pk=contact).first()
            if bill_to is None:
                raise CommandError(f"{found} has no contact with id {contact}.")
        if currency:
            try:
                currency = normalize_currency(currency).upper()
            except UnsupportedCurrency as exc:
                raise CommandError(str(exc)) from None
        if connection_get_active(business=found) is None:
            raise CommandError(f"{found} is not connected to Stripe: connect it on the Stripe settings page first.")

        # An earlier run (or a worker) that stopped half-way is finished first.
        unfinished = list(invoicing.invoices_unfinished(business=found, contact=bill_to, currency=currency)
                          .values_list("pk", flat=True))
        try:
            result = invoicing.invoices_generate(business=found, contact=bill_to, currency=currency, push=False)
            made, left_out = result.invoices, result.left_out
        except NothingToInvoice as exc:
            made, left_out = [], exc.left_out

        outcomes, failures = Counter(), []
        for invoice_id in unfinished + [inv.pk for inv in made]:
            push = invoicing.invoice_push(invoice_id=invoice_id, takeover=True)
            outcomes[push.outcome] += 1
            if push.outcome in ("failed", "mismatch"):
                failures.append(push)

        totals = defaultdict(Decimal)
        for inv in made:
            totals[inv.currency] += inv.total
        self.stdout.write(f"{found}: made {len(made)} invoice(s)"
                          + (f", resumed {len(unfinished)} unfinished" if unfinished else "") + ".")
        for cur, amount in sorted(totals.items()):
            self.stdout.write(f"  {cur}: {format_money(amount, cur)} in {sum(1 for i in made if i.currency == cur)} invoice(s)")
        if outcomes:
            self.stdout.write("Stripe: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
        reasons = Counter(reason for _, reason in left_out if not reason.startswith("already "))
        for reason, n in sorted(reasons.items()):
            self.stdout.write(f"  left out: {n} billable(s): {reason}")
        for push in failures:
            self.stderr.write(f"  FAILED invoice id {push.invoice_id}: {push.message}")
        if failures:
            raise CommandError(f"{len(failures)} invoice(s) could not be completed in Stripe; see above, "
                               "then run again or use Retry in the admin.")
