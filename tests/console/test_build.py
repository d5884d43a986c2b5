"""The shipped console build: what index.html loads exists, the budget holds, and the service
serves it at /console (client routes answer index.html; unknown assets a 404 problem)."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import Stack

DIST = Path(__file__).resolve().parents[2] / "console" / "dist"
JS_BUDGET = 300 * 1024  # gzipped bytes (issue 18)


def test_index_loads_only_files_the_build_ships_within_the_budget() -> None:
    index = (DIST / "index.html").read_text()
    loaded = re.findall(r'(?:src|href)="/console/(assets/[^"]+)"', index)
    assert any(name.endswith(".js") for name in loaded), index
    for name in loaded:
        assert (DIST / name).is_file(), f"index.html loads {name}, which the build lacks"
    scripts = sorted((DIST / "assets").glob("*.js"))
    packed = sum(len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in scripts)
    assert packed <= JS_BUDGET, f"{packed} gzipped bytes of JavaScript"


def test_the_build_is_committed() -> None:
    """A fresh checkout serves /console with no npm step only if git has the build."""
    root = DIST.parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "console/dist"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    built = sorted(str(f.relative_to(root)) for f in DIST.rglob("*") if f.is_file())
    assert sorted(tracked) == built, "commit console/dist as `npm run build` made it"


async def test_the_service_serves_the_console_and_its_client_routes(stack: Stack) -> None:
    index = (DIST / "index.html").read_text()
    [script] = re.findall(r'src="(/console/assets/[^"]+\.js)"', index)
    for path in ("/console/", "/console/orders/42", "/console/review"):
        page = await stack.client.get(path)
        assert page.status_code == 200 and page.text == index, path
        assert "no-cache" in page.headers["cache-control"]
    assert (await stack.client.get("/console")).headers["location"] == "/console/"
    asset = await stack.client.get(script)
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    missing = await stack.client.get("/console/assets/nothing.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    escaping = await stack.client.get("/console/assets/..%2F..%2Fpyproject.toml")
    assert escaping.status_code == 404
