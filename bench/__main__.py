"""Run every benchmark (or those named: `python -m bench audit`) and update docs/benchmarks.md.

Each benchmark runs in a child process whose DATABASE_URL points at its own PostgreSQL
database (BENCH_DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432; named
BENCH_DATABASE_PREFIX_<name>_bench, prefix "hotdash"), kept
between runs unless the benchmark's module sets FRESH_DATABASE. With ``--quick`` each runs at its
small size (see ``bench.quick()``) on a database of its own, so a quick run never replaces the
full-size data set; the last line printed is each benchmark's headline.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Register a benchmark here: the name of its module in bench/.
BENCHMARKS = [
    "audit",
    "deploy_latency",
    "compliance",
    "rollback",
    "probes",
    "pages",
    "webhooks",
    "memory",
    "rollouts",
]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"
SERVER = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
# Two checkouts benchmarking on one server keep apart by prefix.
DATABASE_PREFIX = os.environ.get("BENCH_DATABASE_PREFIX", "hotdash")
HEADER = (
    "# Benchmarks\n\n"
    "Produced by `make bench` (`python -m bench [name ...]`); each section is rewritten by its "
    "own benchmark (bench/<name>.py). Figures are from one real run on the machine named in "
    "the section.\n"
)


def _database(name: str, *, quick: bool) -> str:
    return f"{DATABASE_PREFIX}_{name}_{'quick_' if quick else ''}bench"


def _child(name: str, output: Path) -> None:
    """In the child: create and migrate the benchmark's database, run it, write its section."""
    import psycopg

    from bench import quick

    database = _database(name, quick=quick())
    module = importlib.import_module(f"bench.{name}")
    with psycopg.connect(f"{SERVER.rstrip('/')}/postgres", autocommit=True) as admin:
        # A benchmark whose scenario changes what it measures starts from an empty database.
        if getattr(module, "FRESH_DATABASE", False):
            admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if not exists.fetchone():
            admin.execute(f'CREATE DATABASE "{database}"')
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    # DEBUG off serves hashed static file names from the manifest, as in production.
    call_command("collectstatic", interactive=False, verbosity=0)
    output.write_text(module.run().strip() + "\n")


def _update_results(name: str, section: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{section}{end}"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: {BENCHMARKS})")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for a developer machine (minutes)"
    )
    parser.add_argument("--child", nargs=2, metavar=("NAME", "OUTPUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return 0
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {BENCHMARKS}")
    failed, headlines = [], []
    for name in args.names or BENCHMARKS:
        print(f"== bench {name}", flush=True)
        started = time.monotonic()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hotdash.settings",
            "DATABASE_URL": f"{SERVER.rstrip('/')}/{_database(name, quick=args.quick)}",
            "BENCH_QUICK": "true" if args.quick else "",
            # Production-like: no DEBUG query log; the test client's host allowed.
            "DEBUG": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
            "ALLOWED_HOSTS": "testserver",
            # Against the built-in Fly.io/GitHub simulation, over the test client's plain HTTP.
            "SANDBOX_MODE": "true",
            "SECURE_SSL_REDIRECT": "false",
            "LOG_LEVEL": "WARNING",
        }
        with tempfile.TemporaryDirectory() as tmp:
            output = Path(tmp) / "section.md"
            command = [sys.executable, "-m", "bench", "--child", name, str(output)]
            if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
                failed.append(name)
                continue
            section = output.read_text()
            _update_results(name, section)
        print(
            f"== bench {name}: section written to {RESULTS.relative_to(ROOT)} "
            f"in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        headlines.append(section.strip().splitlines()[-1])
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    print("\n".join(headlines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
