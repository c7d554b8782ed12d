"""The worker, not the endpoint, records ``webhook.received``: the row keeps what that event
says about the request. Deliveries stored before this were audited by the endpoint."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments", "0024_deploy_kind_and_preview_recent_indexes")]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="ip",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="escaped",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="received_audited",
            field=models.BooleanField(default=True),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="received_audited",
            field=models.BooleanField(default=False),
        ),
    ]
