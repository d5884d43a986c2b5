"""Base classes for request bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), so nobody can slip in `status` or
    `shop_id` and have it silently ignored or, worse, assigned."""

    model_config = ConfigDict(extra="forbid")
