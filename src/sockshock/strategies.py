"""Hypothesis strategies and a stateful machine for fuzzing request handlers.

* :func:`fault_plans` -- fault plans whose models, parameters, scopes and every
  decision are drawn by hypothesis, shrinking towards fewer and gentler faults;
  a plan prints an explicit replay of its decisions (``plan.describe()``).
* :func:`fault_models` -- one model class with drawn parameters.
* :func:`chunkings` -- how a byte string is split into reads.
* :func:`datagram_schedules` -- datagrams lost, duplicated, reordered.
* :func:`client_scripts` -- clients that send in chunks, pause, half-close, reset,
  read and close (:class:`sockshock.scripts.ClientScript`).
* :class:`ServerMachine` -- a ``hypothesis.stateful`` machine: concurrent scripted
  clients against a live server started with ``sockshock.serving()``.

``st.from_type`` knows ``FaultPlan``, ``ClientScript`` and every fault model.
Run handlers in memory with ``sockshock.drive()``. This module imports
hypothesis (``pip install 'sockshock[hypothesis]'``); ``import sockshock`` and the
pytest plugin do not.
"""

from sockshock._strategies import (
    ServerMachine,
    chunkings,
    client_scripts,
    datagram_schedules,
    fault_models,
    fault_plans,
)

__all__ = [
    "ServerMachine",
    "chunkings",
    "client_scripts",
    "datagram_schedules",
    "fault_models",
    "fault_plans",
]
