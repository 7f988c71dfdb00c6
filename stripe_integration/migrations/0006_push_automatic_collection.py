from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("stripe_integration", "0005_catalog_customer_links"),
    ]

    operations = [
        migrations.AddField(
            model_name="integrationsettings",
            name="automatic_collection",
            field=models.BooleanField(
                default=True,
                help_text="Invoices are finalized with Stripe's automatic collection on: Stripe retries a declined "
                          "automatic charge (Smart Retries) and sends the reminders the Stripe account is set up for. "
                          "Off: nothing is retried; staff collect unpaid invoices themselves.",
                verbose_name="Let Stripe collect",
            ),
        ),
    ]
