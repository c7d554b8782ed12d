"""The recipe's files: the Dockerfile's collectstatic step run as written (no container daemon
here), and what fly.toml promises the platform."""

from __future__ import annotations

import json
import os
import runpy
import shlex
import subprocess
import sys
from itertools import takewhile
from pathlib import Path

from hotdash.security import SECRET_SETTINGS
from tests.production.conftest import FLY_TOML, ROOT


def dockerfile_step(containing: str) -> str:
    """The first command of the RUN instruction mentioning ``containing``."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    [run] = [line for line in text.splitlines() if line.startswith("RUN ") and containing in line]
    return run.removeprefix("RUN ").split("&&")[0]


def test_the_image_build_collects_hashed_compressed_static_files(tmp_path):
    words = shlex.split(dockerfile_step("collectstatic"))
    assigned = dict(word.split("=", 1) for word in takewhile(lambda word: "=" in word, words))
    command = words[len(assigned) :]
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        **assigned,
        # The image's paths, moved into this test's directory.
        "HOTDASH_VAR_DIR": str(tmp_path / "build-var"),
        "STATIC_ROOT": str(tmp_path / "staticfiles"),
    }
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr

    collected = tmp_path / "staticfiles"
    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]
    sources = [p.relative_to(ROOT / "static").as_posix() for p in (ROOT / "static").rglob("*.*")]
    assert sources and set(sources) <= set(manifest)
    for source in sources:
        hashed = manifest[source]
        assert hashed != source
        assert (collected / hashed).is_file()
        if source.endswith((".css", ".js")):
            assert (collected / f"{hashed}.gz").is_file()


def test_fly_toml_restarts_every_process_and_stops_them_gracefully():
    groups = set(FLY_TOML["processes"])
    assert groups == {"web", "worker", "beat"}
    always = {
        g for rule in FLY_TOML["restart"] if rule["policy"] == "always" for g in rule["processes"]
    }
    assert always == groups
    assert FLY_TOML["kill_signal"] == "SIGTERM"
    gunicorn = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gunicorn["graceful_timeout"] < FLY_TOML["kill_timeout"]


def test_fly_toml_serves_only_web_checked_on_health_and_holds_no_secret():
    service = FLY_TOML["http_service"]
    assert service["processes"] == ["web"]
    assert [check["path"] for check in service["checks"]] == ["/health"]
    assert service["min_machines_running"] >= 1
    assert "manage.py migrate" in FLY_TOML["deploy"]["release_command"]
    assert not set(SECRET_SETTINGS) & set(FLY_TOML["env"])
