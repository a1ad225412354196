"""Client scripts: what a client does, as data that real sockets and ``drive()`` run alike.

A :class:`ClientScript` is a sequence of steps -- :class:`Send`, :class:`Pause`,
:class:`Read`, :class:`HalfClose`, :class:`Reset`, :class:`Close` -- with one
bound (``timeout``) for every read. ``sockshock.drive(handler, script)`` runs it
in memory against a handler, in virtual time; :class:`ScriptRun` runs it on a
real, connected socket (``ScriptRun(script, srv.connect()).run()``), step by step
if you like. Each step ends in a :class:`StepResult`: ``"ok"``, ``"eof"``,
``"timeout"``, ``"closed"`` or the name of the error the socket raised
(``"ECONNRESET"``, ``"EPIPE"``...), and for a read the bytes it got.
``sockshock.strategies.client_scripts()`` draws scripts.

Several clients at once: ``drive(handler, [script, script], server="ThreadingTCPServer",
schedule=SEED)`` runs them and the server's own threads under a controlled
scheduler, one thread at a time; each transcript's ``.schedule`` says what it
chose -- ``print()`` it, pass it back to replay the run exactly, or let
``sockshock.drive.explore()`` try many (docs/howto/interleavings.md).
"""

from sockshock._clients import (
    ClientScript,
    Close,
    HalfClose,
    Pause,
    Read,
    Reset,
    ScriptRun,
    Send,
)

__all__ = [
    "ClientScript",
    "Close",
    "HalfClose",
    "Pause",
    "Read",
    "Reset",
    "ScriptRun",
    "Send",
]
