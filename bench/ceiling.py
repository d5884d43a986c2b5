"""The no-I/O ceiling of webhook intake: a minimal FastAPI app that verifies the HMAC and parses
the JSON, and stores nothing. What the service reaches is measured against it, in the same run.

    BENCH_CEILING_SECRET=… uvicorn bench.ceiling:app --no-access-log --workers N
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import orjson
from fastapi import FastAPI, HTTPException, Request

SECRET = os.environ.get("BENCH_CEILING_SECRET", "whsec_ceiling").encode()

# FastAPI's OpenTelemetry hooks off, as in the service (app.main): the ceiling is the same
# stack doing no I/O, not the stack with more per-request work than the service does.
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/webhooks/shopify")
async def receive(request: Request) -> dict[str, str]:
    body = await request.body()
    digest = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest())
    signature = request.headers.get("x-shopify-hmac-sha256", "").encode()
    if not hmac.compare_digest(digest, signature):
        raise HTTPException(401, "bad signature")
    if not isinstance(orjson.loads(body), dict):
        raise HTTPException(400, "not an object")
    return {"result": "accepted"}
