"""Random draws made explicit: a generator that records its draws, one that replays them.

A plan given ``rng=`` draws every decision from that one generator. When hypothesis
controls it (``st.randoms(use_true_random=False)``), wrapping it in
:class:`Recorded` does two things:

* it orients the draws so that the value hypothesis shrinks towards -- the
  smallest -- is the gentlest fault: a probability gate ``rng.random() <
  probability`` gets ``1 - x`` (shrinks towards not firing), a size
  ``rng.randint(1, n)`` gets ``n + 1 - x`` (shrinks towards the largest chunk);
  ``uniform`` (jitter) already shrinks towards no delay, ``randrange`` (bit
  positions) has no gentler end;
* it keeps every draw, so that a plan can print an explicit schedule,
  :class:`Draws`, that makes exactly the same decisions without hypothesis.

Pure: no I/O (see ``_core``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from sockshock._errors import InvalidArgument, InvalidType, check_type

__all__ = ["Draws", "Recorded"]

_METHODS = ("random", "randint", "randrange", "uniform", "getrandbits")
_BELOW_ONE = 1.0 - 2.0**-53  # the largest float random() may return


class Draws(random.Random):
    """A ``random.Random`` that returns recorded draws, in order.

    ``FaultPlan(*models, rng=Draws([("randint", 3), ("random", 0.25)]))`` makes
    the decisions a failing example made (``plan.describe()`` prints it for a
    plan drawn by hypothesis). Once the draws run out, or when a call is not the
    one recorded next (the code under test changed), each call returns its
    gentlest value: ``random()`` just below 1 (a probability gate does not fire),
    ``randint(a, b)`` ``b`` (the largest chunk), ``uniform(a, b)`` ``a`` (no
    jitter), ``randrange`` its start, ``getrandbits`` 0.

    Args:
        draws: ``(method, value)`` pairs; methods are ``random``, ``randint``,
            ``randrange``, ``uniform`` and ``getrandbits``.
    """

    def __init__(self, draws: Iterable[tuple[str, float]] = ()) -> None:
        super().__init__(0)
        items = tuple(draws) if not isinstance(draws, (str, bytes)) else None
        if items is None:
            raise InvalidType(f"expected (method, value) pairs but got draws={draws!r} "
                              f"(type={type(draws).__name__}) (from Draws())")
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2 and item[0] in _METHODS):
                raise InvalidArgument(f"draws item {item!r} must be a (method, value) pair with "
                                      f"a method among {', '.join(_METHODS)} (from Draws())")
            check_type("value", item[1], (int, float), source="Draws()")
        self.draws: tuple[tuple[str, float], ...] = items
        self._next = 0

    def _take(self, method: str, low: float, high: float, default: float) -> Any:
        if self._next < len(self.draws):
            name, value = self.draws[self._next]
            if name == method and low <= value <= high:
                self._next += 1
                return value
            self._next = len(self.draws)  # diverged: gentlest values from here on
        return default

    def random(self) -> float:
        return float(self._take("random", 0.0, _BELOW_ONE, _BELOW_ONE))

    def randint(self, a: int, b: int) -> int:
        return int(self._take("randint", a, b, b))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        low, high = (0, start - 1) if stop is None else (start, stop - 1)
        return int(self._take("randrange", low, high, low))

    def uniform(self, a: float, b: float) -> float:
        return float(self._take("uniform", min(a, b), max(a, b), a))

    def getrandbits(self, k: int) -> int:
        return int(self._take("getrandbits", 0, 2**k - 1, 0))

    def __repr__(self) -> str:
        return f"Draws({list(self.draws)!r})"


class Recorded(random.Random):
    """Draws from ``source`` -- oriented so that its smallest draw is the gentlest
    fault (see the module's docstring) -- and records them.

    Args:
        source: the generator to draw from (hypothesis' ``st.randoms()``).
        gentle: orient the draws (default); ``False`` passes them through.
    """

    def __init__(self, source: random.Random, *, gentle: bool = True) -> None:
        super().__init__(0)
        check_type("source", source, random.Random, source="Recorded()")
        self.source = source
        self.gentle = gentle
        self.draws: list[tuple[str, float]] = []

    def _keep(self, method: str, value: Any) -> Any:
        self.draws.append((method, value))
        return value

    def random(self) -> float:
        value = self.source.random()
        return float(self._keep("random", min(1.0 - value, _BELOW_ONE) if self.gentle else value))

    def randint(self, a: int, b: int) -> int:
        value = self.source.randint(a, b)
        return int(self._keep("randint", a + b - value if self.gentle else value))

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        return int(self._keep("randrange", self.source.randrange(start, stop, step)))

    def uniform(self, a: float, b: float) -> float:
        return float(self._keep("uniform", self.source.uniform(a, b)))

    def getrandbits(self, k: int) -> int:
        return int(self._keep("getrandbits", self.source.getrandbits(k)))

    def replay(self) -> Draws:
        """A generator that makes the same draws again (see :class:`Draws`)."""
        return Draws(self.draws)

    def __repr__(self) -> str:
        return f"Recorded({self.source!r})"
