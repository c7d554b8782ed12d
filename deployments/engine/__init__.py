"""The rollout engine, one module per concern: lease (run lease, tokens, fence), claim, runner,
steps (one function per step kind), auto_rollback, context (what a step sees), clients (shared
API clients), records (log lines and audit events), hooks (the services it is handed) and
desired (pure: what a machine should look like). ``deployments.services.deploys`` is its entry
point."""
