from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("deployments", "0026_deploy_open_state_index")]

    operations = [
        migrations.AddIndex(
            model_name="deploy",
            index=models.Index(
                fields=["environment", "-created_at", "-id"], name="deploy_env_recent"
            ),
        ),
    ]
