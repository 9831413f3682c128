"""Rows in and out of the repositories: a stored row onto a frozen dataclass, a new one as parameters.

Each repository declares its records as frozen dataclasses named like its columns; these two helpers do
the mapping the repositories used to write by hand, one field at a time.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["RequestRow", "from_row", "params"]

T = TypeVar("T", bound="DataclassInstance")
Convert = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RequestRow:
    """What the journal and the outbox both keep of a Slack request: its idempotency key, who, and where."""

    key: str
    team_id: str
    user_id: str
    channel_id: str | None = None
    response_url: str | None = None
    enterprise_id: str | None = None


def _stored_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


# How a column's value becomes a field of each plain type; times are stored as ISO 8601 text.
_CONVERT: dict[Any, Convert] = {int: int, str: str, bool: bool, datetime: _stored_time}


def _converter(hint: Any) -> Convert | None:
    """How to read a column into a field typed `hint`; None: as the driver gives it."""
    if hint in _CONVERT:
        return _CONVERT[hint]
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        inner = [arg for arg in args if arg is not type(None)]
        convert = _CONVERT.get(inner[0]) if len(inner) == 1 else None
        if convert is not None:
            return lambda value: None if value is None else convert(value)
    # A Literal is checked when written; anything else the repository hands over itself.
    return None


@functools.cache
def _plan(cls: type[DataclassInstance]) -> tuple[tuple[str, Convert | None], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((field.name, _converter(hints[field.name])) for field in dataclasses.fields(cls))


def from_row(cls: type[T], row: Mapping[str, Any], **values: Any) -> T:
    """`cls` with each field read from the column of the same name, converted to the field's type.

    `values` gives the fields whose column holds another form (JSON text, say), already converted.
    """
    read: dict[str, Any] = {}
    for name, convert in _plan(cls):
        if name not in values:
            read[name] = row[name] if convert is None else convert(row[name])
    return cls(**read, **values)


def params(new: DataclassInstance, *, leave_out: Collection[str] = (), **columns: Any) -> dict[str, Any]:
    """The fields of `new` as named statement parameters (`:name`), except `leave_out`, plus `columns`."""
    named = {
        field.name: getattr(new, field.name)
        for field in dataclasses.fields(new)
        if field.name not in leave_out
    }
    return named | columns
