"""Fault decisions drawn in advance: a generator that returns numbers given to it.

:class:`Draws` is a ``random.Random`` whose every call takes the next number of a
list of numbers in [0, 1), given in advance -- drawn by hypothesis
(``sockshock.strategies.fault_plans()``), so that decisions shrink, and printed
as they are, so that a failing example's plan is its own exact replay:
``FaultPlan(PartialReads(max_chunk=64), rng=[Draws([0.0, 0.953])])``.

Each number is oriented so that 0 -- where hypothesis shrinks -- is the gentlest
fault: a probability gate ``rng.random() < probability`` does not fire, a size
``rng.randint(1, n)`` is ``n`` (the largest chunk), a delay
``rng.uniform(0, jitter)`` is 0. Once the list is spent, every call gets 0.

Pure: no I/O (see ``_core``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from sockshock._util import InvalidArgument, check_number, exported_by

__all__ = ["Draws"]

_BELOW_ONE = 1.0 - 2.0**-53  # the largest float random() may return


@exported_by("sockshock.faults")
class Draws(random.Random):
    """A ``random.Random`` that returns numbers given in advance, in order.

    Args:
        units: numbers in [0, 1); 0 is the gentlest decision (see the module's
            docstring), and the value of every call once they are spent.

    One ``Draws`` per model: ``FaultPlan(*models, rng=[Draws(...), ...])``.
    """

    def __new__(cls, units: Iterable[float] = ()) -> Draws:
        return super().__new__(cls)  # Python 3.10's would seed itself with ``units``

    def __init__(self, units: Iterable[float] = ()) -> None:
        super().__init__(0)
        if isinstance(units, (str, bytes)) or not isinstance(units, Iterable):
            raise InvalidArgument(
                f"expected numbers in [0, 1) but got units={units!r} "
                f"(type={type(units).__name__}) (from Draws())"
            )
        values = tuple(units)
        for value in values:
            check_number("units", value, low=0, high=1, high_open=True, source="Draws()")
        self.units: tuple[float, ...] = values
        self._next = 0

    def _unit(self) -> float:
        if self._next < len(self.units):
            self._next += 1
            return self.units[self._next - 1]
        return 0.0

    def random(self) -> float:
        return min(1.0 - self._unit(), _BELOW_ONE)

    def randint(self, a: int, b: int) -> int:
        return b - min(b - a, math.floor(self._unit() * (b - a + 1)))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        low, high = (0, start) if stop is None else (start, stop)
        count = max(1, (high - low + step - 1) // step)
        return low + step * min(count - 1, math.floor(self._unit() * count))

    def uniform(self, a: float, b: float) -> float:
        return a + self._unit() * (b - a)

    def getrandbits(self, k: int) -> int:
        return math.floor(self._unit() * float(1 << k))

    def fresh(self) -> Draws:
        """The same numbers, from the first one again."""
        return Draws(self.units)

    def __repr__(self) -> str:
        return f"Draws({list(self.units)!r})"
