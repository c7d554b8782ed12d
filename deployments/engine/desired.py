"""The desired state of a Fly machine: the environment's declared machine configuration as
plain values, the one function that turns it into the full config Fly is sent, and the
differences between that and what a machine runs. No database, no HTTP.

HotDash manages these parts of a machine's config: ``image``, ``guest`` (cpu kind, cpus,
memory), the service that serves the app (the one on the declared internal port, else the
first: protocol, port, auto stop/start, minimum running, concurrency), the named checks
``http`` and ``tcp``, ``restart``, ``stop_config`` and the ``fly_process_group`` metadata
key. Everything else on an existing machine — env, mounts, files, init, other services and
checks, other metadata, guest extras — is kept as it is.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Ports of a new machine's service: plain HTTP redirected to HTTPS, and TLS terminated by Fly.
DEFAULT_PORTS = (
    {"port": 80, "handlers": ["http"], "force_https": True},
    {"port": 443, "handlers": ["tls", "http"]},
)
# Config keys whose values are Go durations ("15s", "1m30s") or integer nanoseconds.
DURATION_KEYS = frozenset({"interval", "timeout", "grace_period"})
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Check:
    """One health check's timing in seconds; ``path`` only for HTTP."""

    interval: int
    timeout: int
    grace: int
    path: str = ""


@dataclass(frozen=True)
class DeclaredMachineConfig:
    """What every machine of an environment must look like (see ``declared_config``)."""

    region: str
    cpu_kind: str
    cpus: int
    memory_mb: int
    machine_count: int
    min_machines_running: int
    auto_stop: str  # "off", "stop" or "suspend"
    auto_start: bool
    internal_port: int
    concurrency_type: str  # "connections" or "requests"
    soft_limit: int
    hard_limit: int | None  # None: no hard limit
    http_check: Check
    tcp_check: Check
    kill_signal: str
    kill_timeout: int
    restart_policy: str  # "always", "on-failure" or "no"
    restart_max_retries: int
    process_group: str
    app_env: str  # APP_ENV of a machine HotDash creates

    @property
    def checks(self) -> tuple[Check, Check]:
        return (self.http_check, self.tcp_check)

    @property
    def slowest_check_grace(self) -> int:
        return max(check.grace for check in self.checks)

    @property
    def slowest_check_timeout(self) -> int:
        return max(check.timeout for check in self.checks)


def declared_config(environment: Any) -> DeclaredMachineConfig:
    """The declared config of an Environment, from its own columns only (no query)."""
    e = environment
    return DeclaredMachineConfig(
        region=e.region,
        cpu_kind=e.machine_cpu_kind,
        cpus=e.machine_cpus,
        memory_mb=e.machine_memory_mb,
        machine_count=e.machine_count,
        min_machines_running=e.min_machines_running,
        auto_stop=e.auto_stop_machines,
        auto_start=e.auto_start_machines,
        internal_port=e.internal_port,
        concurrency_type=e.concurrency_type,
        soft_limit=e.concurrency_soft_limit,
        hard_limit=e.concurrency_hard_limit,
        http_check=Check(
            interval=e.health_http_interval_seconds,
            timeout=e.health_http_timeout_seconds,
            grace=e.health_http_grace_seconds,
            path=e.health_http_path,
        ),
        tcp_check=Check(
            interval=e.health_tcp_interval_seconds,
            timeout=e.health_tcp_timeout_seconds,
            grace=e.health_tcp_grace_seconds,
        ),
        kill_signal=e.kill_signal,
        kill_timeout=e.kill_timeout_seconds,
        restart_policy=e.restart_policy,
        restart_max_retries=e.restart_max_retries,
        process_group=e.process_group,
        app_env=e.kind,
    )


def _timing(check: Check) -> dict[str, str]:
    return {
        "interval": f"{check.interval}s",
        "timeout": f"{check.timeout}s",
        "grace_period": f"{check.grace}s",
    }


def _service(declared: DeclaredMachineConfig, current: Mapping[str, Any]) -> dict[str, Any]:
    concurrency: dict[str, Any] = {
        "type": declared.concurrency_type,
        "soft_limit": declared.soft_limit,
    }
    if declared.hard_limit is not None:
        concurrency["hard_limit"] = declared.hard_limit
    return {
        **copy.deepcopy(dict(current)),
        "protocol": "tcp",
        "internal_port": declared.internal_port,
        "autostop": declared.auto_stop,
        "autostart": declared.auto_start,
        "min_machines_running": declared.min_machines_running,
        "concurrency": concurrency,
        "ports": copy.deepcopy(current.get("ports") or list(DEFAULT_PORTS)),
    }


def machine_config(
    declared: DeclaredMachineConfig,
    *,
    image: str,
    existing: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The full config to send for a machine running ``image`` (Fly replaces configs whole):
    ``existing`` (the machine's current config; None for a new machine) with every part
    HotDash manages set from ``declared``, and ``metadata`` added to its metadata."""
    group = declared.process_group
    if existing is None:
        config: dict[str, Any] = {
            "env": {
                "PRIMARY_REGION": declared.region,
                "FLY_PROCESS_GROUP": group,
                "APP_ENV": declared.app_env,
            }
        }
    else:
        config = copy.deepcopy(dict(existing))
    config["image"] = image
    config.pop("size", None)  # a named size preset and an explicit guest exclude each other
    config["guest"] = {
        **(config.get("guest") or {}),
        "cpu_kind": declared.cpu_kind,
        "cpus": declared.cpus,
        "memory_mb": declared.memory_mb,
    }
    config["metadata"] = {
        **(config.get("metadata") or {}),
        "fly_process_group": group,
        **(metadata or {}),
    }
    services = list(config.get("services") or [])
    ours = next(
        (i for i, s in enumerate(services) if s.get("internal_port") == declared.internal_port),
        0,
    )
    current = services[ours] if services else {}
    services[ours : ours + 1] = [_service(declared, current)]
    config["services"] = services
    port = declared.internal_port
    http, tcp = declared.http_check, declared.tcp_check
    config["checks"] = {
        **(config.get("checks") or {}),
        "http": {
            "type": "http",
            "port": port,
            "method": "GET",
            "path": http.path,
            **_timing(http),
        },
        "tcp": {"type": "tcp", "port": port, **_timing(tcp)},
    }
    restart: dict[str, Any] = {"policy": declared.restart_policy}
    if declared.restart_policy == "on-failure":
        restart["max_retries"] = declared.restart_max_retries
    config["restart"] = restart
    config["stop_config"] = {"signal": declared.kill_signal, "timeout": f"{declared.kill_timeout}s"}
    return config


# --- drift -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One managed value of a machine's config that is not what is declared (None: absent)."""

    field: str  # a path such as "services[0].concurrency.soft_limit"
    declared: Any
    live: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "declared": self.declared, "live": self.live}


def duration_seconds(value: Any) -> float | None:
    """Seconds in a Go duration ("1m30s", "500ms") or an integer of nanoseconds; None if
    neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value / 1e9
    parts = _DURATION.findall(str(value))
    if not parts or "".join(n + u for n, u in parts) != str(value).strip():
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def _normal(key: str, value: Any) -> Any:
    """A value as Fly means it: durations in seconds, the legacy autostop booleans."""
    if key in DURATION_KEYS:
        seconds = duration_seconds(value)
        return value if seconds is None else seconds
    if key == "autostop" and isinstance(value, bool):
        return "stop" if value else "off"
    return value


def _diff(path: str, key: str, desired: Any, live: Any, out: list[Difference]) -> None:
    if isinstance(desired, Mapping) and isinstance(live, Mapping):
        for name in sorted(set(desired) | set(live)):
            child = f"{path}.{name}" if path else str(name)
            _diff(child, str(name), desired.get(name), live.get(name), out)
    elif isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            _diff(f"{path}[{index}]", key, want, have, out)
    elif _normal(key, desired) != _normal(key, live):
        out.append(Difference(field=path, declared=desired, live=live))


def differences(declared: DeclaredMachineConfig, live: Mapping[str, Any]) -> list[Difference]:
    """Every managed value of ``live`` (a machine's config) that differs from ``declared``,
    comparing the config ``machine_config`` would send for the image the machine already
    runs: the image itself is never a difference, nor is anything HotDash does not manage."""
    desired = machine_config(declared, image=live.get("image", ""), existing=live)
    found: list[Difference] = []
    _diff("", "", desired, dict(live), found)
    return found
