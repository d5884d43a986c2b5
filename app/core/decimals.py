"""Decimals travel as strings: the schema says so, so generated clients never send floats.

Requests still accept a JSON number (pydantic converts it exactly), but clients typed from the
document write `"4.38"`, the same shape every answer uses.
"""

from __future__ import annotations

from pydantic import WithJsonSchema

DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"


def decimal_string(description: str, example: str) -> WithJsonSchema:
    """The JSON schema of a non-negative decimal field: a string like `example`."""
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": DECIMAL_PATTERN,
            "description": description,
            "examples": [example],
        }
    )
