from django.db import migrations

ROLES = ("viewer", "deployer", "approver", "admin")
GENESIS_HASH = "0" * 64


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    AuditChainHead = apps.get_model("approvals", "AuditChainHead")
    AuditChainHead.objects.get_or_create(id=1, defaults={"last_hash": GENESIS_HASH})


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
