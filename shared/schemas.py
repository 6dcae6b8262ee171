"""The sales record contract (``sales.monthly``, docs/asyncapi.yaml): the one definition of a valid record."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError, field_validator

ID_MAX_LENGTH = 64
YEAR_MIN, YEAR_MAX = 1900, 2100
MONTH_MIN, MONTH_MAX = 1, 12
SALES_FIELDS = ("shop_id", "product_id", "year", "month", "sales_qty")


def _id_to_str(value: Any) -> Any:
    """Ids are non-empty strings or integers (never bools or floats); integers are kept as their decimal text."""
    if isinstance(value, bool):
        raise ValueError("must be a string or an integer, not a boolean")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a string or an integer, got {type(value).__name__}")
    return value


RecordId = Annotated[str, BeforeValidator(_id_to_str), Field(min_length=1, max_length=ID_MAX_LENGTH)]


class SalesRecord(BaseModel):
    """Total quantity of one product sold by one shop in one calendar month. Later records with the same
    (shop_id, product_id, year, month) replace earlier ones."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    shop_id: RecordId
    product_id: RecordId
    year: StrictInt = Field(ge=YEAR_MIN, le=YEAR_MAX)
    month: StrictInt = Field(ge=MONTH_MIN, le=MONTH_MAX)
    sales_qty: float = Field(ge=0)

    @field_validator("sales_qty", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @property
    def period(self) -> str:
        """The record's month as "YYYY-MM"."""
        return f"{self.year:04d}-{self.month:02d}"


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic errors as the contract's ``[{field, message}]`` list."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "record"
        out.append({"field": field, "message": err["msg"]})
    return out


def validate_record(raw: Any) -> tuple[SalesRecord | None, list[dict[str, str]]]:
    """Validate one raw record: (record, []) when valid, (None, errors) otherwise."""
    if not isinstance(raw, dict):
        return None, [{"field": "record", "message": f"must be a JSON object, got {type(raw).__name__}"}]
    try:
        return SalesRecord.model_validate(raw), []
    except ValidationError as exc:
        return None, field_errors(exc)
