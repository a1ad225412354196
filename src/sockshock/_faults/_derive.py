"""Decisions derived from a counter: the numbers a seeded plan's models draw.

A seeded :class:`~sockshock.faults.FaultPlan` keeps no random generator per
connection. The numbers a model draws for one operation are a pure function of
(seed, connection, model, operation kind, operation index) and of how many numbers
that decision drew before -- a counter-based generator, in the spirit of
SplitMix64 and Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2,
3", SC 2011): nothing is kept between decisions, so

* forgetting a connection when it ends changes none of its decisions (there is
  nothing to forget but models' own state);
* a decision does not depend on the order in which threads (or forked children)
  reach the plan, nor on which other connections exist.

The function, so that it can be reproduced anywhere (all arithmetic modulo 2**64,
``mix`` is SplitMix64's output function, Stafford's "Mix13")::

    mix(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
              z *= 0x94D049BB133111EB; z ^ (z >> 31)
    seed_key       = mix(seed + GAMMA)                   # GAMMA = 0x9E3779B97F4A7C15
    connection_key = mix(seed_key ^ connection)          # the listener is 2**64 - 1
    stream         = mix(connection_key ^ (index << 24 | model << 8 | kind_code))
    draw 0 = stream;  draw n = mix(stream + n * GAMMA)   # 64 bits each
    random() = (draw >> 11) / 2**53;  getrandbits(k <= 64) = draw >> (64 - k)

``model`` is the model's position in the plan, ``index`` the operation's index in
its direction on the connection (for ``accept``: how many accept errors the
plan has injected for the connection it would create), ``kind_code`` one of
:data:`KIND_CODES`. The rest of ``random.Random``'s methods (``uniform``,
``choice``...) are CPython's own, built on ``random()`` and ``getrandbits()``;
``randint`` and ``randrange`` are CPython's algorithm too, written out for speed:
the same numbers on every version sockshock supports.

Pure: no I/O (see ``_core``).
"""

from __future__ import annotations

import random
import zlib
from typing import Any

from sockshock._faults._core import ACCEPT, DATAGRAM_IN, DATAGRAM_OUT, RECV, SEND

__all__ = ["AFFECTED", "GAMMA", "KIND_CODES", "CounterRandom", "mix64"]

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, SplitMix64's increment
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_UNIT = 1.0 / 9007199254740992.0  # 2**-53

#: The code of each operation kind in a stream's key.
KIND_CODES = {RECV: 1, SEND: 2, DATAGRAM_IN: 3, DATAGRAM_OUT: 4, ACCEPT: 5}
#: The code of a ``per="connection"`` model's one draw for a connection.
AFFECTED = 6


def mix64(z: int) -> int:
    """SplitMix64's output function: a bijection of 64-bit integers that spreads
    every input bit over every output bit."""
    z = ((z ^ (z >> 30)) * _M1) & MASK
    z = ((z ^ (z >> 27)) * _M2) & MASK
    return z ^ (z >> 31)


def kind_code(kind: str) -> int:
    """The code of ``kind`` (an unknown kind gets a stable one from its name)."""
    code = KIND_CODES.get(kind)
    return code if code is not None else 16 + zlib.crc32(kind.encode()) % 240


class CounterRandom(random.Random):
    """The ``random.Random`` a seeded plan hands its models.

    The plan aims it at one decision -- :attr:`op` (the operation: its connection
    and kind), :attr:`index` (its index), :attr:`model`, and :attr:`state`
    ``None`` -- and each draw takes the next number of that decision's stream
    (see the module's docstring). One per plan, re-aimed before each model's
    decision (the plan is not thread-safe by itself: the fault layer serialises
    calls). Keys are computed on the first draw only: a model that draws nothing
    costs four attribute stores. ``randint`` and ``randrange`` are CPython's
    algorithm (rejection sampling on ``getrandbits``) without its argument checks
    on the common path: exactly what ``random.Random``'s give from the same
    ``getrandbits``.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(0)  # (the Mersenne Twister underneath is never used)
        self._seed = seed
        self.seed_key = mix64((seed + GAMMA) & MASK)
        #: The decision aimed at.
        self.op: Any = None
        self.index = 0
        self.model = 0
        #: The kind's code; ``None``: the code of ``op.kind``.
        self.code: int | None = None
        #: The stream's counter (``None``: before the decision's first draw).
        self.state: int | None = None
        # The last connection's key (one connection's operations come in runs).
        self._connection = -(2**80)  # (no connection has this number)
        self._connection_key = 0

    def aim(self, op: Any, model: int, index: int, code: int | None = None) -> None:
        """Aim at the draws of one decision, from its first number (the plan sets
        the attributes itself, which is quicker)."""
        self.op, self.model, self.index, self.code, self.state = op, model, index, code, None

    def _start(self) -> int:
        """The decision's first number: its stream key (the counter starts there)."""
        op = self.op
        connection = op.connection
        if connection != self._connection:
            self._connection = connection
            self._connection_key = mix64(self.seed_key ^ (connection & MASK))
        code = self.code
        if code is None:
            code = KIND_CODES.get(op.kind) or kind_code(op.kind)
        z = self._connection_key ^ ((self.index << 24) | (self.model << 8) | code)
        z = ((z ^ (z >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        z ^= z >> 31
        self.state = z
        return z

    def next64(self) -> int:
        """The decision's next 64-bit number."""
        state = self.state
        if state is None:
            return self._start()
        state = (state + GAMMA) & MASK
        self.state = state
        z = ((state ^ (state >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        state = self.state  # next64(), inline: the hot path
        if state is None:
            return (self._start() >> 11) * _UNIT
        state = (state + GAMMA) & MASK
        self.state = state
        z = ((state ^ (state >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        return ((z ^ (z >> 31)) >> 11) * _UNIT

    def getrandbits(self, k: int) -> int:
        if 0 < k <= 64:
            return self.next64() >> (64 - k)
        if k == 0:
            return 0
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        words, extra = divmod(k, 64)
        value = 0
        for _ in range(words):
            value = (value << 64) | self.next64()
        if extra:
            value = (value << extra) | (self.next64() >> (64 - extra))
        return value

    def _below(self, n: int) -> int:
        """An int in ``[0, n)``, ``n > 0``: CPython's ``_randbelow_with_getrandbits``."""
        k = n.bit_length()
        if k > 64:
            return super()._randbelow(n)  # type: ignore[misc,no-any-return]
        shift = 64 - k
        r = self.next64() >> shift
        while r >= n:
            r = self.next64() >> shift
        return r

    def randint(self, a: int, b: int) -> int:
        if type(a) is int and type(b) is int and b >= a:
            n = b - a + 1
            k = n.bit_length()
            if k <= 64:
                r = self.next64() >> (64 - k)
                while r >= n:
                    r = self.next64() >> (64 - k)
                return a + r
        return super().randint(a, b)  # CPython's algorithm and errors

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None and step == 1 and type(start) is int and start > 0:
            return self._below(start)
        return super().randrange(start, stop, step)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied as what it is made from (it keeps nothing else)."""
        return (type(self), (self._seed,))

    def __repr__(self) -> str:
        return f"<CounterRandom seed_key={self.seed_key:#018x}>"
