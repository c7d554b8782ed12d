"""Run a program in a new process started as production starts (the env settings read at
startup), against the test database, and return the JSON of its last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

from django.conf import settings as django_settings
from django.db import connection


def run_probe(program: str, **env: str) -> dict:
    """``env`` over this process's environment; a name set to None is left out."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hotdash.settings",
        "DATABASE_URL": url,
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={name: value for name, value in environment.items() if value is not None},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
