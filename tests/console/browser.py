"""Browser-test support: a real uvicorn server on 127.0.0.1 and Debian's chromium through
Playwright (never a downloaded browser), axe-core injected into each page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("PRAP_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "app/console/frontend/node_modules/axe-core/axe.min.js"
ASSETS = ROOT / "app/console/static/govuk-frontend.min.css"
SCREENSHOTS = ROOT / "docs/console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_prerequisite() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    if not ASSETS.exists():
        return "the console's GOV.UK Frontend assets are missing (scripts/console-assets)"
    if not AXE.exists():
        return "axe-core is missing (scripts/console-assets installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_server(database_url: str, secret: str, log: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "PRAP_DATABASE_URL": database_url,
        "PRAP_SANDBOX": "1",
        "PRAP_JWT_SECRET": secret,
        "PRAP_SCHEDULER": "0",
        "PRAP_WEBHOOKS": "0",
        "PRAP_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def accessible(page: Any, name: str | None = None) -> None:
    """No serious or critical axe-core violation on the page; then its screenshot."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document)")
    serious = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in serious
    ]
    if name is None:
        return
    if os.environ.get("PRAP_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    else:
        # Rendered all the same, but the committed screenshots change only when asked for:
        # an ordinary test run leaves the work tree clean.
        assert await page.screenshot(full_page=True)
