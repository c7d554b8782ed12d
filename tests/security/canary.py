"""Secret canary helpers: unique secret values, and every place one could leak to, as text."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

SECRET_SETTINGS = (
    "FLY_API_TOKEN",
    "GITHUB_TOKEN",
    "GITHUB_WEBHOOK_SECRET",
    "SECRET_KEY",
    "AUDIT_HMAC_KEY",
)
# The one column that is the secret store for a notification signing secret.
NOTIFICATION_SECRET_FIELD = "notification_webhook_secret"


def canary_values() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    names = (*SECRET_SETTINGS, "NOTIFICATION_WEBHOOK_SECRET")
    return {name: f"canary{tag}{name.lower().replace('_', '')}" for name in names}


def database_dump(notification_secret: str) -> str:
    """Every row of every table, minus the notification secret in its own column."""
    out = io.StringIO()
    call_command("dumpdata", "--format=json", stdout=out)
    stored = f'"{NOTIFICATION_SECRET_FIELD}": "{notification_secret}"'
    return out.getvalue().replace(stored, f'"{NOTIFICATION_SECRET_FIELD}": "<secret store>"')


def _with_decoded_bodies(raw: str) -> str:
    """A kombu envelope carries its task body base64-encoded: add the decoded body."""
    try:
        envelope = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(envelope, dict) and envelope.get("properties", {}).get("body_encoding") == (
        "base64"
    ):
        return raw + "\n" + base64.b64decode(envelope["body"]).decode(errors="replace")
    return raw


def broker_messages() -> list[str]:
    """Every value on the broker: Redis keys and values of the broker's database, or the
    filesystem broker's message files. Task bodies are decoded."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(url, decode_responses=True)
        found: list[str] = []
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == "string":
                values = [client.get(key)]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "hash":
                values = [f"{k}={v}" for k, v in client.hgetall(key).items()]
            elif kind == "set":
                values = list(client.smembers(key))
            elif kind == "zset":
                values = client.zrange(key, 0, -1)
            else:
                values = []
            found += [key] + [_with_decoded_bodies(value or "") for value in values]
        return found
    root = Path(settings.BROKER_DIR)
    return [
        _with_decoded_bodies(path.read_text(errors="replace"))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]


def task_messages() -> list[dict]:
    """The (task name, args, kwargs) of each task message waiting on the broker."""
    tasks = []
    for raw in broker_messages():
        for line in raw.splitlines():
            try:
                envelope = json.loads(line)
            except ValueError:
                continue
            if isinstance(envelope, dict) and "task" in envelope.get("headers", {}):
                args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
                tasks.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs})
    return tasks


def leaks(canaries: dict[str, str], sources: dict[str, str]) -> list[str]:
    """``"<secret> in <source>"`` for every canary found in a source's text."""
    return [
        f"{name} in {source}: ...{text[max(0, text.find(value) - 200) : text.find(value) + 60]}"
        for source, text in sources.items()
        for name, value in canaries.items()
        if value in text
    ]
