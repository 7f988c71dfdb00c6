"""Rows made before modes were recorded (issue 15): a business whose Stripe connections
were all in one mode had everything in that mode; its invoices already in Stripe, and
their payments, refunds, disputes and credit notes, say so now. A business with
connections in both modes is left as it is (its rows show in both modes until edited
in the admin); local drafts keep no mode."""
from django.db import migrations


def backfill(apps, schema_editor):
    Connection = apps.get_model("stripe_integration", "StripeConnection")
    Invoice = apps.get_model("finance", "Invoice")
    children = [apps.get_model("finance", name) for name in ("Payment", "Dispute", "CreditNote")]
    Refund = apps.get_model("finance", "Refund")
    by_business: dict[int, set] = {}
    for business_id, livemode in Connection.objects.values_list("business_id", "livemode"):
        by_business.setdefault(business_id, set()).add(livemode)
    for business_id, found in by_business.items():
        if len(found) != 1:
            continue
        (mode,) = found
        Invoice.objects.filter(business_id=business_id, livemode__isnull=True, stripe_invoice_id__isnull=False).update(livemode=mode)
        for model in children:
            model.objects.filter(business_id=business_id, livemode__isnull=True, invoice__livemode=mode).update(livemode=mode)
        Refund.objects.filter(business_id=business_id, livemode__isnull=True, payment__livemode=mode).update(livemode=mode)


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_integration", "0012_sync_run_per_connection"),
        ("finance", "0014_stripe_livemode"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
