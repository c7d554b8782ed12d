"""Take the README's screenshots by driving the demo in chromium (Playwright).

    python scripts/screenshots.py                 # starts its own demo, writes docs/screenshots/
    python scripts/screenshots.py --url http://127.0.0.1:8000   # a fresh `make run` instead

Without --url it starts, on free loopback ports and in a temporary directory, what `make run`
starts: a migrated and seeded SQLite database, the sandbox, a Celery worker and the web server,
and stops them again at the end. Then, as the demo users: alice requests a deploy, bob opens
its approval drawer and approves it, the deploy is caught in progress, admin opens a pull
request in the sandbox so that a preview appears; overview, drawer, deploy, audit and previews
are taken at desktop (1400 x 900) and phone (390 x 844) size, viewport only, to keep the PNGs
small. Needs Debian's chromium (or CHROMIUM=/path/to/chromium).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEVICES = {
    "desktop": {"viewport": {"width": 1400, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# Upper bounds that turn a hang into an error; a healthy demo is much faster.
START_TIMEOUT_S = 120
STATE_TIMEOUT_MS = 120_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            raise SystemExit("a demo process exited during start-up; see its output above")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {START_TIMEOUT_S} s")


@contextmanager
def own_demo() -> Iterator[str]:
    """What `make run` starts, on free ports in a temporary directory; yields its URL."""
    port, sandbox_port = free_port(), free_port()
    python = sys.executable
    celery = str(Path(python).parent / "celery")
    with tempfile.TemporaryDirectory(prefix="hotdash-screenshots-") as var_dir:
        env = {
            **os.environ,
            "DEBUG": "true",
            "HOTDASH_VAR_DIR": var_dir,
            "SANDBOX_PORT": str(sandbox_port),
            "DATABASE_URL": f"sqlite:///{var_dir}/hotdash.sqlite3",
        }
        env.pop("REDIS_URL", None)  # the embedded filesystem broker, as `make run` uses

        def manage(*args: str) -> list[str]:
            return [python, "manage.py", *args]

        for command in (manage("migrate", "--noinput"), manage("seed_demo")):
            subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        webhooks = f"{url}/webhooks/github"  # the sandbox delivers to us, as under `make run`
        commands = [
            manage("sandbox", "--port", f"{sandbox_port}", "--webhook-url", webhooks),
            [celery, "-A", "hotdash", "worker", "--loglevel", "WARNING", "--concurrency", "2"],
            manage("runserver", f"127.0.0.1:{port}", "--noreload"),
        ]
        # Quiet but for warnings and errors (runserver's stderr is its access log).
        quiet = [{}, {}, {"stderr": subprocess.DEVNULL}]
        processes = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, **extra)
            for command, extra in zip(commands, quiet, strict=True)
        ]
        try:
            wait_until_up(f"{url}/accounts/login/", processes)
            yield url
        finally:
            for process in reversed(processes):  # the sandbox last: the worker may still call it
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()


def sign_in(browser, url: str, username: str, password: str, **context_options) -> Page:
    """A page of a new browser context (``**DEVICES["phone"]``, say), signed in as ``username``
    and on the overview. The browser tests sign in with it too."""
    page = browser.new_context(**context_options).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#sign-in-password")
    page.wait_for_url(f"{url}/")
    return page


def shoot(page: Page, out: Path, name: str, device: str, focus: str = "") -> None:
    """A viewport-sized PNG; ``focus`` scrolls that element to the top first on the phone."""
    page.wait_for_load_state("networkidle")
    if focus and device == "phone":
        page.locator(focus).evaluate("element => element.scrollIntoView()")
    page.screenshot(path=out / f"{name}-{device}.png", animations="disabled")


def shrink(out: Path) -> None:
    """Quantize the PNGs with pngquant when it is installed (a third of the size)."""
    pngquant = shutil.which("pngquant")
    if pngquant:
        pngs = [str(png) for png in sorted(out.glob("*.png"))]
        subprocess.run(
            [pngquant, "--force", "--skip-if-larger", "--quality", "70-95", "--ext", ".png", *pngs],
            check=False,  # exit 98/99: a file it left as it was
        )


def take(url: str, password: str, out: Path, chromium: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        # alice asks to promote v1.3.0 to production.
        alice = sign_in(browser, url, "alice", password, **DEVICES["desktop"])
        alice.click("#overview-apps a:text-is('production')")
        alice.locator("a.button:has-text('to production…')").first.click()
        request = alice.locator("#drawer-root dialog[data-drawer][open]")
        # v1.3.0 has run healthy on staging (the promotion rule); the newest, v1.3.1, has not.
        request.locator("select[name=release]").select_option(label="hot-dash v1.3.0")
        request.locator("textarea[name=reason]").fill("Ship the audit export before the sale")
        request.locator("button:has-text('Request deploy')").click()
        alice.wait_for_url("**/deploys/*/")
        deploy_url = alice.url

        bobs = {
            device: sign_in(browser, url, "bob", password, **DEVICES[device]) for device in DEVICES
        }
        for device, page in bobs.items():
            shoot(page, out, "overview", device)
            page.goto(f"{url}/approvals/")
            page.locator("#pending-list a").first.click()
            page.locator("#drawer-root dialog[data-drawer][open]").wait_for()
            shoot(page, out, "drawer", device)
        drawer = bobs["desktop"].locator("#drawer-root dialog[data-drawer][open]")
        drawer.locator("textarea[name=comment]").fill("Checked the changelog: go")
        drawer.locator("button[value=approve]").click()
        drawer.wait_for(state="detached")

        for device, page in bobs.items():
            page.goto(deploy_url)
            page.locator("#deploy-state", has_text="Running").or_(
                page.locator("#deploy-state", has_text="Verifying")
            ).wait_for(timeout=STATE_TIMEOUT_MS)
            shoot(page, out, "deploy", device, focus="#deploy-live")
        for device, page in bobs.items():
            page.goto(f"{url}/audit/")
            shoot(page, out, "audit", device)

        admin = sign_in(browser, url, "admin", password, **DEVICES["desktop"])
        admin.goto(f"{url}/ops/sandbox/")
        admin.select_option("select[name=action]", "open_pull")
        admin.fill("input[name=title]", "Dark mode for the overview")
        admin.fill("input[name=branch]", "dark-mode")
        admin.click("#sandbox-control-form button[type=submit]")
        admin.locator(".message-success").wait_for()
        for device, page in bobs.items():
            # The page polls only while a preview is in flight: reload until the PR's arrives.
            row = page.locator("#preview-table tbody tr a").first
            for _ in range(STATE_TIMEOUT_MS // 1000):
                page.goto(f"{url}/previews/")
                if row.count():
                    break
                page.wait_for_timeout(1000)
            row.wait_for(timeout=STATE_TIMEOUT_MS)
            shoot(page, out, "previews", device)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo (fresh `make run`); default: start one")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--password", default=os.environ.get("DEMO_PASSWORD", "hotdash-demo"), help="demo users'"
    )
    args = parser.parse_args()
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        raise SystemExit("chromium is not on PATH: apt-get install -y chromium")
    if args.url:
        take(args.url.rstrip("/"), args.password, args.out, chromium)
    else:
        with own_demo() as url:
            take(url, args.password, args.out, chromium)
    shrink(args.out)
    for png in sorted(args.out.glob("*.png")):
        print(f"{png.relative_to(ROOT)}  {png.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
