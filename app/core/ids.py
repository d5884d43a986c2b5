"""Ids travel as strings: every id the API answers with is a string, so every id it takes is too.

The database keys are bigints; a client may send `"42"` (what it read) or `42` and both validate,
but the schema says string, so generated clients pass ids through without converting them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

MAX_ID = 2**63 - 1  # bigint: anything larger is not an id of ours (422, never a database error)

Id = Annotated[
    int,
    Field(ge=1, le=MAX_ID),
    WithJsonSchema({"type": "string", "pattern": "^[1-9][0-9]{0,18}$", "examples": ["42"]}),
]
