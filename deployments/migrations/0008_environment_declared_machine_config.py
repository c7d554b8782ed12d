from django.db import migrations, models


def tcp_timings_from_shared(apps, schema_editor):
    """The shared check timeout and grace applied to both checks until now: keep them so."""
    Environment = apps.get_model("deployments", "Environment")
    for environment in Environment.objects.all():
        environment.health_tcp_timeout_seconds = environment.health_http_timeout_seconds
        environment.health_tcp_grace_seconds = environment.health_http_grace_seconds
        environment.save(update_fields=["health_tcp_timeout_seconds", "health_tcp_grace_seconds"])


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0007_backup_run"),
    ]

    operations = [
        migrations.RenameField(
            model_name="environment",
            old_name="health_timeout_seconds",
            new_name="health_http_timeout_seconds",
        ),
        migrations.RenameField(
            model_name="environment",
            old_name="health_grace_seconds",
            new_name="health_http_grace_seconds",
        ),
        migrations.AddField(
            model_name="environment",
            name="auto_start_machines",
            field=models.BooleanField(default=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="auto_stop_machines",
            field=models.CharField(
                choices=[("off", "Off"), ("stop", "Stop"), ("suspend", "Suspend")],
                default="off",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="concurrency_hard_limit",
            field=models.PositiveIntegerField(
                blank=True, help_text="Empty: no hard limit.", null=True
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="concurrency_soft_limit",
            field=models.PositiveIntegerField(default=20),
        ),
        migrations.AddField(
            model_name="environment",
            name="concurrency_type",
            field=models.CharField(
                choices=[("connections", "Connections"), ("requests", "Requests")],
                default="connections",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="drift",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="environment",
            name="drift_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="drift_checked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="drift_error",
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="health_tcp_grace_seconds",
            field=models.PositiveIntegerField(default=30),
        ),
        migrations.AddField(
            model_name="environment",
            name="health_tcp_timeout_seconds",
            field=models.PositiveIntegerField(default=2),
        ),
        migrations.AddField(
            model_name="environment",
            name="internal_port",
            field=models.PositiveIntegerField(default=8080),
        ),
        migrations.AddField(
            model_name="environment",
            name="kill_signal",
            field=models.CharField(
                choices=[
                    ("SIGINT", "SIGINT"),
                    ("SIGTERM", "SIGTERM"),
                    ("SIGQUIT", "SIGQUIT"),
                    ("SIGUSR1", "SIGUSR1"),
                    ("SIGUSR2", "SIGUSR2"),
                    ("SIGKILL", "SIGKILL"),
                    ("SIGSTOP", "SIGSTOP"),
                ],
                default="SIGINT",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="kill_timeout_seconds",
            field=models.PositiveSmallIntegerField(default=5),
        ),
        migrations.AddField(
            model_name="environment",
            name="min_machines_running",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="environment",
            name="process_group",
            field=models.SlugField(default="app", max_length=60),
        ),
        migrations.AddField(
            model_name="environment",
            name="restart_max_retries",
            field=models.PositiveSmallIntegerField(default=10),
        ),
        migrations.AddField(
            model_name="environment",
            name="restart_policy",
            field=models.CharField(
                choices=[("always", "Always"), ("on-failure", "On failure"), ("no", "Never")],
                default="on-failure",
                max_length=12,
            ),
        ),
        migrations.AlterField(
            model_name="deploy",
            name="kind",
            field=models.CharField(
                choices=[
                    ("deploy", "Deploy"),
                    ("rollback", "Rollback"),
                    ("auto_rollback", "Automatic rollback"),
                    ("preview", "Preview"),
                    ("reconcile", "Reconcile config"),
                ],
                default="deploy",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="environment",
            name="machine_cpu_kind",
            field=models.CharField(
                choices=[("shared", "Shared"), ("performance", "Performance")],
                default="shared",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="environment",
            name="machine_memory_mb",
            field=models.PositiveIntegerField(default=256),
        ),
        migrations.RunPython(tcp_timings_from_shared, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("concurrency_hard_limit__isnull", True),
                    ("concurrency_hard_limit__gte", models.F("concurrency_soft_limit")),
                    _connector="OR",
                ),
                name="environment_concurrency_soft_within_hard",
                violation_error_message="The soft concurrency limit cannot be above the hard limit.",
            ),
        ),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(("min_machines_running__lte", models.F("machine_count"))),
                name="environment_min_running_within_count",
                violation_error_message="Minimum machines running cannot be above the machine count.",
            ),
        ),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("kill_timeout_seconds__gte", 1), ("kill_timeout_seconds__lte", 300)
                ),
                name="environment_kill_timeout_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(("internal_port__gte", 1), ("internal_port__lte", 65535)),
                name="environment_internal_port_range",
            ),
        ),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(("machine_cpus__gte", 1), ("machine_memory_mb__gte", 256)),
                name="environment_guest_minimum",
            ),
        ),
        migrations.AddConstraint(
            model_name="environment",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("health_http_interval_seconds__gte", 1),
                    ("health_http_timeout_seconds__gte", 1),
                    ("health_tcp_interval_seconds__gte", 1),
                    ("health_tcp_timeout_seconds__gte", 1),
                ),
                name="environment_check_timings_positive",
            ),
        ),
    ]
