"""Reading an app's ``fly.toml`` into an environment's declared machine configuration.

Pure: text in, Environment field values out, with every key HotDash does not model listed
as ignored (never silently dropped). Fly's documented shapes are understood: ``[[services]]``
(with ``ports``, ``concurrency``, ``tcp_checks``, ``http_checks``), ``[http_service]`` (with
``concurrency`` and ``checks``), top-level ``[checks.<name>]``, ``[[vm]]`` (``size`` presets,
``cpu_kind``, ``cpus``, ``memory``), ``[deploy]``, ``[processes]``, ``[[restart]]``,
``kill_timeout``, ``kill_signal`` and ``primary_region``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployments.engine.desired import duration_seconds

Path = tuple[str | int, ...]
_MEMORY = re.compile(r"^\s*(\d+)\s*(gb|g|mb|m)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^(shared-cpu|performance)-(\d+)x$")
# Megabytes per CPU of Fly's named sizes, when the file names no memory.
_SIZE_MEMORY = {"shared": 256, "performance": 2048}
_RESTART = {
    "always": "always",
    "on-failure": "on-failure",
    "on_failure": "on-failure",
    "never": "no",
}


class FlyTomlError(ValueError):
    """The file cannot be read as a Fly configuration; the message says where and why."""


@dataclass
class FlyTomlValues:
    """What a fly.toml declares: Environment field values, the keys HotDash does not model
    (``ignored``, as paths such as ``services[0].ports``) and how values were read (``notes``)."""

    values: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fly_app: str = ""  # the file's ``app``: the Fly app it configures


def _render(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _Reader:
    """Walks the parsed file, remembering which keys were used."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.used: set[Path] = set()
        self.result = FlyTomlValues()

    def at(self, path: Path) -> Any:
        node: Any = self.data
        for part in path:
            if isinstance(part, int):
                node = node[part] if isinstance(node, list) and part < len(node) else None
            else:
                node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                return None
        return node

    def take(self, path: Path, kinds: type | tuple[type, ...]) -> Any:
        """The value at ``path`` (None if absent), marked used; of ``kinds`` or an error."""
        value = self.at(path)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in (
            kinds if isinstance(kinds, tuple) else (kinds,)
        ):
            raise FlyTomlError(f"{_render(path)}: expected {_names(kinds)}, found {value!r}")
        if not isinstance(value, kinds):
            raise FlyTomlError(f"{_render(path)}: expected {_names(kinds)}, found {value!r}")
        self.used.add(path)
        return value

    def table_list(self, path: Path) -> list[Any]:
        value = self.at(path)
        if value is None:
            return []
        if isinstance(value, Mapping):  # [services] written once as a table
            raise FlyTomlError(f"{_render(path)}: expected an array of tables ([[...]])")
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise FlyTomlError(f"{_render(path)}: expected an array of tables ([[...]])")
        return value

    def set(self, name: str, value: Any) -> None:
        if value is not None:
            self.result.values[name] = value

    def note(self, message: str) -> None:
        self.result.notes.append(message)

    def unused(self, node: Any = None, path: Path = ()) -> list[str]:
        node = self.data if not path else node
        found: list[str] = []
        items = (
            node.items()
            if isinstance(node, Mapping)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            child_path = (*path, key)
            if child_path in self.used:
                continue
            if any(used[: len(child_path)] == child_path for used in self.used):
                found += self.unused(child, child_path)
            else:
                found.append(_render(child_path))
        return found


def _names(kinds: type | tuple[type, ...]) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    words = {str: "text", int: "a number", float: "a number", bool: "true/false", list: "a list"}
    return " or ".join(dict.fromkeys(words.get(k, k.__name__) for k in kinds))


def _whole_seconds(reader: _Reader, path: Path, seconds: float) -> int:
    whole = math.ceil(seconds)
    if whole != seconds:
        reader.note(f"{_render(path)}: {seconds:g} s rounded up to {whole} s.")
    return whole


def _duration(reader: _Reader, path: Path, *, integer_unit: float) -> int | None:
    """A duration in whole seconds: text such as "10s", or a number in ``integer_unit``
    seconds (milliseconds for checks, seconds for kill_timeout)."""
    value = reader.take(path, (str, int, float))
    if value is None:
        return None
    if isinstance(value, str):
        seconds = duration_seconds(value)
        if seconds is None:
            raise FlyTomlError(f'{_render(path)}: {value!r} is not a duration such as "10s"')
    else:
        seconds = value * integer_unit
    return _whole_seconds(reader, path, seconds)


def _memory_mb(reader: _Reader, path: Path) -> int | None:
    value = reader.take(path, (str, int))
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = _MEMORY.match(value)
    if match is None:
        raise FlyTomlError(f'{_render(path)}: {value!r} is not a memory size such as "1gb"')
    number, unit = int(match[1]), (match[2] or "mb").lower()
    return number * 1024 if unit in ("gb", "g") else number


def _for_group(reader: _Reader, path: Path, group: str | None) -> int | None:
    """The index of the first table in the list at ``path`` that applies to ``group`` (its
    ``processes`` name it, or it names none)."""
    for index, table in enumerate(reader.table_list(path)):
        processes = table.get("processes")
        if group is None or not processes or group in processes:
            if processes is not None:
                reader.take((*path, index, "processes"), list)
            return index
    return None


def _process_group(reader: _Reader) -> str | None:
    processes = reader.at(("processes",))
    named = [reader.at(p) for p in (("http_service", "processes"), ("services", 0, "processes"))]
    for listed in named:
        if isinstance(listed, list) and listed and isinstance(listed[0], str):
            return listed[0]
    if isinstance(processes, Mapping) and processes:
        return next(iter(processes))
    return None


def _check(reader: _Reader, path: Path, kind: str) -> None:
    prefix = f"health_{kind}_"
    reader.set(
        prefix + "interval_seconds", _duration(reader, (*path, "interval"), integer_unit=1e-3)
    )
    reader.set(prefix + "timeout_seconds", _duration(reader, (*path, "timeout"), integer_unit=1e-3))
    reader.set(
        prefix + "grace_seconds", _duration(reader, (*path, "grace_period"), integer_unit=1e-3)
    )
    if kind == "http":
        reader.set("health_http_path", reader.take((*path, "path"), str))
        method = reader.at((*path, "method"))
        if isinstance(method, str) and method.upper() == "GET":
            reader.take((*path, "method"), str)
        protocol = reader.at((*path, "protocol"))
        if protocol == "http":
            reader.take((*path, "protocol"), str)
    if reader.at((*path, "type")) == kind:
        reader.take((*path, "type"), str)


def _checks(reader: _Reader, service: Path | None) -> None:
    """The first HTTP and the first TCP check: the service's, else a top-level named one."""
    found: dict[str, Path] = {}
    if service is not None:
        lists = (
            (("http", "checks"),)
            if service[0] == "http_service"
            else (("http", "http_checks"), ("tcp", "tcp_checks"))
        )
        for kind, key in lists:
            if reader.table_list((*service, key)):
                found.setdefault(kind, (*service, key, 0))
    named = reader.at(("checks",))
    if isinstance(named, Mapping):
        for name, check in named.items():
            kind = check.get("type") if isinstance(check, Mapping) else None
            if kind in ("http", "tcp") and kind not in found:
                found[kind] = ("checks", name)
                if check.get("port") is not None:
                    reader.take(("checks", name, "port"), int)
    for kind, path in found.items():
        _check(reader, path, kind)


def _service(reader: _Reader, group: str | None) -> Path | None:
    if isinstance(reader.at(("http_service",)), Mapping):
        path: Path | None = ("http_service",)
        if reader.at(("http_service", "processes")) is not None:
            reader.take(("http_service", "processes"), list)
    else:
        index = _for_group(reader, ("services",), group)
        path = None if index is None else ("services", index)
        if path is not None and reader.at((*path, "protocol")) == "tcp":
            reader.take((*path, "protocol"), str)
    if path is None:
        return None
    reader.set("internal_port", reader.take((*path, "internal_port"), int))
    stop = reader.take((*path, "auto_stop_machines"), (str, bool))
    if isinstance(stop, bool):
        stop = "stop" if stop else "off"
    reader.set("auto_stop_machines", stop)
    reader.set("auto_start_machines", reader.take((*path, "auto_start_machines"), bool))
    reader.set("min_machines_running", reader.take((*path, "min_machines_running"), int))
    concurrency = (*path, "concurrency")
    reader.set("concurrency_type", reader.take((*concurrency, "type"), str))
    reader.set("concurrency_soft_limit", reader.take((*concurrency, "soft_limit"), int))
    hard = reader.take((*concurrency, "hard_limit"), int)
    reader.set("concurrency_hard_limit", hard)
    return path


def _vm(reader: _Reader, group: str | None) -> None:
    index = _for_group(reader, ("vm",), group)
    if index is None:
        return
    path: Path = ("vm", index)
    size = reader.take((*path, "size"), str)
    if size is not None:
        match = _SIZE.match(size)
        if match is None:
            raise FlyTomlError(f"{_render((*path, 'size'))}: unknown size {size!r}")
        kind = "shared" if match[1] == "shared-cpu" else "performance"
        cpus = int(match[2])
        reader.set("machine_cpu_kind", kind)
        reader.set("machine_cpus", cpus)
        reader.set("machine_memory_mb", cpus * _SIZE_MEMORY[kind])
    reader.set("machine_cpu_kind", reader.take((*path, "cpu_kind"), str))
    reader.set("machine_cpus", reader.take((*path, "cpus"), int))
    reader.set("machine_memory_mb", _memory_mb(reader, (*path, "memory")))
    reader.set("machine_memory_mb", _memory_mb(reader, (*path, "memory_mb")))


def _deploy(reader: _Reader) -> None:
    strategy = reader.at(("deploy", "strategy"))
    if strategy == "rolling":
        reader.set("rollout_strategy", reader.take(("deploy", "strategy"), str))
    elif strategy is not None:
        reader.note(f"deploy.strategy: HotDash rolls out in batches only; {strategy!r} ignored.")
    fraction = reader.at(("deploy", "max_unavailable"))
    if isinstance(fraction, float) and 0 < fraction < 1:
        reader.take(("deploy", "max_unavailable"), float)
        reader.set("max_unavailable_percent", max(1, round(fraction * 100)))
    elif fraction is not None:
        reader.note(
            "deploy.max_unavailable: HotDash takes a fraction of the machines (below 1); "
            f"{fraction!r} ignored."
        )


def _restart(reader: _Reader, group: str | None) -> None:
    index = _for_group(reader, ("restart",), group)
    if index is None:
        return
    path: Path = ("restart", index)
    policy = reader.take((*path, "policy"), str)
    if policy is not None:
        if policy not in _RESTART:
            raise FlyTomlError(f"{_render((*path, 'policy'))}: unknown restart policy {policy!r}")
        reader.set("restart_policy", _RESTART[policy])
    reader.set("restart_max_retries", reader.take((*path, "retries"), int))


def parse(text: str) -> FlyTomlValues:
    """The declared machine configuration in a fly.toml; raises FlyTomlError when the text
    is not TOML or a value has the wrong shape."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FlyTomlError(f"not valid TOML: {error}") from error
    reader = _Reader(data)
    reader.result.fly_app = reader.take(("app",), str) or ""
    reader.set("region", reader.take(("primary_region",), str))
    reader.set("kill_signal", reader.take(("kill_signal",), str))
    reader.set("kill_timeout_seconds", _duration(reader, ("kill_timeout",), integer_unit=1.0))
    group = _process_group(reader)
    if group is not None:
        reader.set("process_group", group)
        if isinstance(reader.at(("processes", group)), str):
            reader.take(("processes", group), str)
            reader.note(
                f"processes.{group}: the process group's name is used; its command is not "
                "managed by HotDash."
            )
    service = _service(reader, group)
    _checks(reader, service)
    _vm(reader, group)
    _deploy(reader)
    _restart(reader, group)
    reader.result.ignored = reader.unused()
    return reader.result
