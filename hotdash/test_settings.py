"""Test runs: the real settings with development defaults and a fast password hasher.

Each pytest process gets its own var/ directory (test database file and filesystem broker), so
parallel runs and the worker processes they start never see each other's data or messages.
"""

import os
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault(
    "HOTDASH_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / f"test-{os.getpid()}")
)

from hotdash.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Pacing would add a second per GitHub write to every test; tests/integrations/test_rate_limits.py
# switches it on to prove the spacing.
GITHUB_MUTATION_SPACING_MS = 0
