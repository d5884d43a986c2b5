"""The `cashback` command as an operator and a newcomer use it: real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.payloads import EXAMPLES
from tests.support import ShopHandle, shopify_headers

CASHBACK = [sys.executable, "-m", "app"]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASHBACK_")}
    return env | values


def test_shops_create_prints_json_with_a_working_key(settings: Settings) -> None:
    assert settings.database_url
    result = subprocess.run(
        [
            *CASHBACK,
            "shops",
            "create",
            "--domain",
            "cli.myshopify.com",
            "--currency",
            "EUR",
            "--mode",
            "manual",
            "--webhook-secret",
            "whsec_from_cli",
            "--json",
        ],
        env=_env(CASHBACK_DATABASE_URL=settings.database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shop = json.loads(result.stdout)
    assert set(shop) == {"id", "domain", "api_key", "webhook_secret"}
    assert (shop["domain"], shop["webhook_secret"]) == ("cli.myshopify.com", "whsec_from_cli")

    again = subprocess.run(
        [*CASHBACK, "shops", "create", "--domain", "cli.myshopify.com", "--json"],
        env=_env(CASHBACK_DATABASE_URL=settings.database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1
    assert "already registered" in again.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_with_nothing_configured_runs_the_readme_walk(tmp_path: Path) -> None:
    """`cashback serve` on embedded PostgreSQL and Redis: first start prints a demo shop, the
    curl walk credits 4.38, Ctrl-C stops cleanly, and a second start keeps the data."""
    port = _free_port()
    data_dir = tmp_path / "data"
    env = _env(CASHBACK_DATA_DIR=str(data_dir))
    base = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CASHBACK, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("cashback serve did not become ready")

    def stop(proc: subprocess.Popen[str]) -> str:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output
        return output

    proc = start()
    try:
        wait_ready(proc)
        demo = json.loads((data_dir / "demo-shop.json").read_text())
        shop = ShopHandle(int(demo["id"]), demo["domain"], demo["api_key"], demo["webhook_secret"])
        body = (EXAMPLES / "orders-paid.json").read_bytes()
        response = httpx.post(
            f"{base}/webhooks/shopify", content=body, headers=shopify_headers(shop, body), timeout=5
        )
        assert response.json() == {"result": "accepted"}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            orders = httpx.get(f"{base}/v1/orders", headers=shop.auth, timeout=5).json()["items"]
            if orders and orders[0]["status"] == "processed":
                break
            time.sleep(0.1)
        assert [(o["status"], o["credited_amount"]) for o in orders] == [("processed", "4.38")]
        console = httpx.get(f"{base}/console/", timeout=5)  # shipped built: no npm step
        assert console.status_code == 200 and "/console/assets/" in console.text
    finally:
        first_output = stop(proc)
    assert "Demo shop created" in first_output and shop.api_key in first_output
    assert f"{base}/console" in first_output

    proc = start()
    try:
        wait_ready(proc)
        customer = httpx.get(
            f"{base}/v1/customers/{orders[0]['customer_id']}", headers=shop.auth, timeout=5
        ).json()
        assert customer["balance"] == "4.38"
    finally:
        second_output = stop(proc)
    assert "Demo shop created" not in second_output
