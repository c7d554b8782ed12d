"""Test runs: the real settings with development defaults and a fast password hasher."""

import os

os.environ.setdefault("DEBUG", "true")

from hotdash.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
