from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("finance", "0004_payments_out_of_band_details"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="push_generation",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
    ]
