from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments", "0025_webhook_delivery_received_audit_in_worker")]

    operations = [
        migrations.AddIndex(
            model_name="deploy",
            index=models.Index(
                fields=["environment", "-created_at", "-id"], name="deploy_env_recent"
            ),
        ),
    ]
