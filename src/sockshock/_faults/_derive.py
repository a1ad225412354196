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
    draw n (0, 1, ...) = mix(stream + (n + 1) * GAMMA)   # 64 bits
    random() = (draw >> 11) / 2**53;  getrandbits(k <= 64) = draw >> (64 - k)

``model`` is the model's position in the plan, ``index`` the operation's index in
its direction on the connection (for ``accept``: how many accept errors the
plan has injected for the connection it would create), ``kind_code`` one of
:data:`KIND_CODES`. The rest of ``random.Random``'s methods (``randint``,
``uniform``, ``choice``...) are CPython's own, built on ``random()`` and
``getrandbits()``, identical on every version sockshock supports.

Pure: no I/O (see ``_core``).
"""

from __future__ import annotations

import random
import zlib

from sockshock._faults._core import ACCEPT, DATAGRAM_IN, DATAGRAM_OUT, RECV, SEND

__all__ = ["AFFECTED", "GAMMA", "KIND_CODES", "CounterRandom", "mix64"]

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, SplitMix64's increment
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

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
    """The ``random.Random`` a seeded plan hands its models: :meth:`begin` names
    the decision (connection, model, kind, index); each draw then takes the next
    number of that decision's stream (see the module's docstring).

    One per plan, re-aimed before each model's decision (the plan is not
    thread-safe by itself: the fault layer serialises calls). The stream key is
    computed on the first draw only: a model that draws nothing costs nothing.
    """

    def __init__(self, seed: int) -> None:
        super().__init__(0)  # (the Mersenne Twister underneath is never used)
        self.seed_key = mix64((seed + GAMMA) & MASK)
        self._connection: int | None = None
        self._connection_key = 0
        self._word = 0  # (index << 24 | model << 8 | kind_code) of the decision
        self._state: int | None = None

    def begin(self, connection: int, model: int, code: int, index: int) -> None:
        """Aim at the draws of one decision, from its first number."""
        if connection != self._connection:  # one connection's operations come in runs
            self._connection = connection
            self._connection_key = mix64(self.seed_key ^ (connection & MASK))
        self._word = (index << 24) | (model << 8) | code
        self._state = None

    def next64(self) -> int:
        """The decision's next 64-bit number."""
        state = self._state
        if state is None:
            state = mix64(self._connection_key ^ self._word)
        state = (state + GAMMA) & MASK
        self._state = state
        z = ((state ^ (state >> 30)) * _M1) & MASK
        z = ((z ^ (z >> 27)) * _M2) & MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self.next64() >> 11) * (1.0 / 9007199254740992.0)  # 2**-53

    def getrandbits(self, k: int) -> int:
        if k <= 64:
            if k <= 0:
                if k < 0:
                    raise ValueError("number of bits must be non-negative")
                return 0
            return self.next64() >> (64 - k)
        words, extra = divmod(k, 64)
        value = 0
        for _ in range(words):
            value = (value << 64) | self.next64()
        if extra:
            value = (value << extra) | (self.next64() >> (64 - extra))
        return value

    def __repr__(self) -> str:
        return f"<CounterRandom seed_key={self.seed_key:#018x}>"
