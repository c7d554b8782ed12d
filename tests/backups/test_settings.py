"""The backup settings fail at start-up with a message that says what to fix."""

from __future__ import annotations

import pytest

from tests.foundation.test_settings import boot


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKUP_SCHEDULE": "0 3 * *"}, "BACKUP_SCHEDULE must be a crontab line"),
        ({"BACKUP_SCHEDULE": "0 25 * * sun"}, "BACKUP_SCHEDULE must be a crontab line"),
        ({"BACKUP_KEEP": "0"}, "BACKUP_KEEP must be at least 1"),
    ],
)
def test_bad_backup_settings_fail_loudly(env, message):
    result = boot({"DEBUG": "true", **env})
    assert result.returncode != 0
    assert message in result.stderr
