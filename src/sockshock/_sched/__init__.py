"""The controlled scheduler: deterministic interleavings of a server's threads and
its clients, in memory.

Modules, bottom-up: ``_core`` (the scheduler: tasks, switch points, blocking,
virtual time, deadlocks, the watcher of uncontrolled blocking), ``_strategy``
(``Schedule``; random walk, PCT, replay), ``_explore`` (many schedules; schedules as
text), ``_sync`` (controlled locks, conditions
and threads, put in place while a run is active), ``_net`` (in-memory sockets whose
operations are switch points, a listening socket, the layer and clock of a run),
``_client`` (a scripted client as a controlled thread), ``_real`` (the same on real
loopback and Unix sockets).

It sits above ``_memory`` (its sockets are memory sockets with switch points) and
below ``socketserver``: it knows nothing of servers; ``_harness`` runs a server's
own serving code on it (``drive(schedule=...)``).
"""

from sockshock._sched._client import ScheduledClient
from sockshock._sched._core import MAX_STEPS, Aborted, Event, Scheduler, Task, current_task
from sockshock._sched._explore import Exploration, as_schedule, explore, parse
from sockshock._sched._net import SchedClock, SchedLayer, SchedListener, SchedSocket
from sockshock._sched._real import RealClient, RealLayer, RealSchedSocket, readable
from sockshock._sched._strategy import (
    DEFAULT_DEPTH,
    DEFAULT_LENGTH,
    Schedule,
    Strategy,
    last_schedule,
)
from sockshock._sched._sync import (
    REAL_LOCK,
    REAL_LOCK_TYPES,
    ControlledLock,
    ControlledRLock,
    install,
    uncontrolled,
    uninstall,
)

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_LENGTH",
    "MAX_STEPS",
    "REAL_LOCK",
    "REAL_LOCK_TYPES",
    "Aborted",
    "ControlledLock",
    "ControlledRLock",
    "Event",
    "Exploration",
    "RealClient",
    "RealLayer",
    "RealSchedSocket",
    "SchedClock",
    "SchedLayer",
    "SchedListener",
    "SchedSocket",
    "Schedule",
    "ScheduledClient",
    "Scheduler",
    "Strategy",
    "Task",
    "as_schedule",
    "current_task",
    "explore",
    "install",
    "last_schedule",
    "parse",
    "readable",
    "uncontrolled",
    "uninstall",
]
