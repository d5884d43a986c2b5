"""Base classes for request bodies."""

from __future__ import annotations

import types
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422), so nobody can slip in `status` or
    `shop_id` and have it silently ignored or, worse, assigned."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _json_types_as_declared(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would read 0 or "yes" as a boolean, false as 0 and 0 as a date; the document
        # says which JSON type each field takes.
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        types_ = _types(field.annotation)
        if bool in types_ and not isinstance(value, bool):
            raise ValueError("Input should be true or false")
        if int in types_ and bool not in types_ and isinstance(value, bool):
            raise ValueError("Input should be a valid integer")
        if (
            list[int] in types_
            and isinstance(value, list)
            and any(isinstance(item, bool) for item in value)
        ):
            raise ValueError("Input should be a list of integers")
        if types_ & {date, datetime} and isinstance(value, int | float):
            raise ValueError("Input should be an ISO 8601 date string")
        if Decimal in types_ and isinstance(value, int | float) and not isinstance(value, bool):
            # Amounts and rates are decimal strings ("4.38"): a JSON number may already have
            # been rounded by the client's float.
            raise ValueError('Input should be a decimal string, e.g. "4.38"')
        return value


def _types(annotation: Any) -> set[Any]:
    if get_origin(annotation) is Annotated:
        return _types(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return set().union(*(_types(arg) for arg in get_args(annotation)))
    return {annotation}
