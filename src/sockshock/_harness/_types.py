"""The types the harness's public signatures are written in.

sockshock never imports the standard library's ``socketserver`` (``install()``
must be able to take its place first), so a server is described by what the
harness needs of it -- a :class:`Server` protocol that sockshock's classes, the
standard library's and every class built on either satisfy -- and a request
handler class by how it is called.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar, Union

from sockshock._clients import ClientScript, ScriptStep
from sockshock._faults import FaultModel, FaultPlan
from sockshock._util import Clock
from sockshock._wire import FaultLayer

__all__ = [
    "AddressArg",
    "ClientArg",
    "ClockArg",
    "ExpectedErrors",
    "FaultsArg",
    "HandlerClass",
    "PlanArg",
    "Server",
    "ServerT",
    "TLSArg",
]


class Server(Protocol):
    """A socket server: ``socketserver.BaseServer`` -- sockshock's or the standard
    library's -- or any class built on either."""

    @property
    def server_address(self) -> object:
        """Where it listens."""
        ...

    def server_close(self) -> None:
        """Close it."""
        ...


#: The type of the server a handle holds.
ServerT = TypeVar("ServerT", bound=Server)

#: A request handler class, or anything the server calls as one
#: (``functools.partial(SimpleHTTPRequestHandler, directory=...)``).
HandlerClass = Callable[..., object]

#: Where a server listens: a loopback ``(host, port)`` (IPv6: up to a 4-tuple) or a
#: Unix socket path.
AddressArg = Union[
    tuple[str, int], tuple[str, int, int], tuple[str, int, int, int], str, os.PathLike[str]
]

#: ``faults=``: a plan, fault models (made into a plan), or a ready fault layer.
FaultsArg = Union[FaultPlan, FaultModel, Sequence[FaultModel], FaultLayer]

#: ``clock=``: ``"real"``, ``"virtual"`` or a clock.
ClockArg = Union[Literal["real", "virtual"], Clock]

#: ``expect_errors=``: an exception class or a tuple of them.
ExpectedErrors = Union[type[BaseException], tuple[type[BaseException], ...]]

#: ``tls=``: ``True`` (sockshock's certificate) or a server-side context.
TLSArg = Union[bool, ssl.SSLContext]

#: ``drive(faults=...)``: a plan, or fault models (made into a plan).
PlanArg = Union[FaultPlan, FaultModel, Sequence[FaultModel]]

#: What a scripted client does: a script, its steps, bytes (sent, then a half-close
#: and a read to end of file) or byte strings (each sent and read on its own).
ClientArg = Union[ClientScript, Sequence[ScriptStep], bytes, Sequence[bytes]]
