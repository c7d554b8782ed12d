"""The registered names of the tasks that services publish by name (``hotdash.queue.send``).

Each of these tasks declares its ``name=`` from here, so services never import a task module
and renaming a task function never strands messages already in the broker.
"""

DEPLOY_RUN = "deployments.tasks.deploys.deploy_run"
NOTIFICATION_DELIVER = "deployments.tasks.notifications.notification_deliver"
WEBHOOK_DELIVERY_PROCESS = "deployments.tasks.webhooks.webhook_delivery_process_task"
WEBHOOK_DELIVERIES_DRAIN = "deployments.tasks.webhooks.webhook_deliveries_drain"
PREVIEW_BUILD_READY = "deployments.tasks.previews.preview_build_ready"
PREVIEW_REFRESH = "deployments.tasks.previews.preview_refresh"
BACKUP_RUN = "deployments.tasks.backups.backup_scheduled"
COMPLIANCE_SWEEP = "deployments.tasks.compliance.compliance_sweep_job"
GITHUB_REPORTS_DELIVER = "deployments.tasks.github_reports.github_reports_deliver_task"
