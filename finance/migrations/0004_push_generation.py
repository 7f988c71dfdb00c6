from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("finance", "0003_invoice_dispute_and_refunded"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="push_generation",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
