from django.db import migrations, models
from django.db.models import F


def pending_due_now(apps, schema_editor):
    """Notifications pending before this field existed are due since they were created, so the
    resend sweep picks them up."""
    Notification = apps.get_model("deployments", "Notification")
    Notification.objects.filter(state="pending").update(next_attempt_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0003_release_assets_ci_checks"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(pending_due_now, migrations.RunPython.noop),
    ]
