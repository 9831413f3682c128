"""Programmed faults in the order injected: the first that matches applies, used up after `times` uses."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar


class _Fault(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]
    times: int


F = TypeVar("F", bound=_Fault)


class FaultQueue(Generic[F]):
    """Request faults and callback faults alike; the queue keeps copies, so callers' faults stay as given."""

    def __init__(self) -> None:
        self._faults: list[F] = []

    def inject(self, fault: F) -> None:
        """Queue a copy of `fault` behind those already queued."""
        self._faults.append(copy.copy(fault))

    def clear(self) -> None:
        """Forget every fault not yet used up."""
        self._faults.clear()

    def copies(self) -> list[F]:
        """The faults still active (copies; `times` is what is left)."""
        return [copy.copy(f) for f in self._faults]

    def to_json(self) -> list[dict[str, Any]]:
        """The faults still active, as the /_sim/ routes show them."""
        return [dataclasses.asdict(f) for f in self._faults]

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """Use the first fault that `matches` once (dropping it when used up) and return it."""
        for index, fault in enumerate(self._faults):
            if matches(fault):
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[index]
                return fault
        return None
