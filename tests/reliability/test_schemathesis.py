"""Schemathesis against openapi.yaml, with the app on a real socket, a real database and Redis.

All default checks, every phase the installed version has (examples, coverage, fuzzing and
stateful); authenticated with a real shop admin key and, for the operator route, the operator
token. Fails on any 5xx or any response that does not match the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import Settings
from app.events.publish import DASHBOARD_UPDATED, order_status_changed, publish
from app.orders.state import OrderStatus
from tests.payloads import new_order_id, paid_order
from tests.support import ADMIN_TOKEN, ShopHandle, Stack, served

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = int(os.environ.get("CASHBACK_SCHEMATHESIS_EXAMPLES", "8"))
# The live stream never ends: schemathesis reads this many of its events, checks each against
# the declared schema, and closes the connection.
STREAM_EVENTS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Schemathesis sends many deliberately unauthenticated requests (the ignored_auth check);
    # they must meet 401, not the failed-auth limiter's 429.
    return settings.model_copy(update={"auth_failure_limit": 1_000_000})


# Operations whose inputs obey rules a JSON schema cannot state: an If-Match that is one of
# this API's ETags, a cursor it issued, an IANA timezone, a shop domain, a Shopify order
# that reads as one, decimals within their digits. A schema-valid request that breaks such a
# rule gets a 400/422 problem, which the positive-data check is told to accept here.
BUSINESS_RULES = {
    "listOrders": "a status filter and a cursor this API issued",
    "listAuditEvents": "a cursor this API issued",
    "listCustomerLedger": "a cursor this API issued",
    "listApiKeys": "a cursor this API issued",
    "replaceCatalogProduct": "text without NUL characters (PostgreSQL text cannot hold them)",
    "getDailyMetrics": "an IANA timezone and a bounded range",
    "getDashboardMetrics": "an IANA timezone",
    "getTopCustomers": "an IANA timezone",
    "approveOrder": "an ETag of this API in If-Match",
    "rejectOrder": "an ETag of this API in If-Match",
    "holdOrder": "an ETag of this API in If-Match",
    "releaseOrder": "an ETag of this API in If-Match",
    "processOrder": "an ETag of this API in If-Match",
    "createShop": "a shop domain, an ISO 4217 currency, an IANA timezone",
    "updateShopSettings": "an IANA timezone, amounts within the currency's digits",
    "previewCashback": "an order payload Shopify could send",
    "simulateProgram": "decimals within their digits, a range in order",
    "replaceProgram": "decimals within their digits, a rule sets a rate or excludes",
    "createApiKey": "an Idempotency-Key not used before for another request",
    "bulkApproveOrders": "an Idempotency-Key not used before for another request",
    "bulkRejectOrders": "an Idempotency-Key not used before for another request",
    "redeemCredit": "an Idempotency-Key not used before, an amount within the currency's digits",
    "getWeeklyAudit": "an ISO week that exists (week 53 only in long years)",
}
# The same key with another body is 422 `idempotency_key_reused`, and an If-Match that is a
# real but stale ETag is 412: both are the client's mistake, however valid each value is.


# Query parameters go through pydantic's lax mode, which reads a number as a Unix timestamp
# instead of refusing it (request bodies refuse it: app.core.schemas.RequestModel).
LAX_COERCION = {
    "listOrders": "created_from / created_to read a number as a Unix timestamp",
    "listAuditEvents": "date_from / date_to read a number as a Unix timestamp",
}
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def business_rules() -> str:
    lax = "".join(
        f"""
[[operations]]
include-operation-id = "{operation_id}"
checks.negative_data_rejection.expected-statuses = {json.dumps([*REJECTIONS, "200"])}
"""
        for operation_id in LAX_COERCION
    )
    # GET /v1/orders/bulk-approve is GET /v1/orders/{order_id} with an id that is not a
    # number: 422 naming `order_id`, where the check wants 405.
    shadowed = "".join(
        f"""
[[operations]]
include-operation-id = "{operation_id}"
checks.unsupported_method.enabled = false
"""
        for operation_id in ("bulkApproveOrders", "bulkRejectOrders")
    )
    return (
        lax
        + shadowed
        + "".join(
            f"""
[[operations]]
include-operation-id = "{operation_id}"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "400", "401", "404", "409", "412", "422"
]
"""
            for operation_id in BUSINESS_RULES
        )
    )


@asynccontextmanager
async def live_events(stack: Stack, shop: ShopHandle) -> AsyncIterator[None]:
    """Events on the shop's channel while schemathesis reads its stream: each kind the workers
    send, through the publisher they use."""
    redis, prefix = stack.resources.broker.redis, stack.settings.queue_name

    async def keep_publishing() -> None:
        for n in itertools.count(1):
            changed = order_status_changed(
                n, str(n), OrderStatus.pending, OrderStatus.processed, datetime.now(UTC)
            )
            await publish([(shop.id, changed), (shop.id, DASHBOARD_UPDATED)], redis, prefix)
            await asyncio.sleep(0.02)  # a pace, not a wait: a stream meets events within it

    task = asyncio.create_task(keep_publishing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def config_file(tmp: Path, api_key: str) -> Path:
    path = tmp / "schemathesis.toml"
    path.write_text(
        f"""
[auth.openapi.ApiKey]
bearer = "{api_key}"

[auth.openapi.AdminToken]
bearer = "{ADMIN_TOKEN}"

[generation]
max-examples = {MAX_EXAMPLES}

[checks.negative_data_rejection]
# A schema-violating body too large to read is refused before it is parsed.
expected-statuses = {json.dumps(REJECTIONS)}

[[operations]]
include-operation-id = "streamEvents"
max-stream-events = {STREAM_EVENTS}
{business_rules()}
"""
    )
    return path


async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(
    stack: Stack, tmp_path: Path
) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency"
    shop = await stack.create_shop()
    for _ in range(3):  # some orders and a customer to read, approve, reject...
        await stack.deliver(shop, paid_order(id=new_order_id()))
    await stack.run_worker()
    report = tmp_path / "report"
    async with (
        served(stack.settings, stack.resources, log_level="critical") as url,
        live_events(stack, shop),
    ):
        process = await asyncio.create_subprocess_exec(
            st,
            "--config-file",
            str(config_file(tmp_path, shop.api_key)),
            "run",
            str(ROOT / "openapi.yaml"),
            "--url",
            url,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--report",
            "ndjson",
            "--report-dir",
            str(report),
            "--no-color",
            cwd=tmp_path,  # its cache directory goes there, not into the checkout
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    print(text)
    cases = re.search(r"(\d+) generated, (.*)", text)
    print("schemathesis cases:", cases.group(0) if cases else "none reported")
    assert process.returncode == 0, text[-6000:]
    assert cases and int(cases.group(1)) > 0, "schemathesis generated no test cases"
