"""Real misbehaving clients over real sockets: the code behind :mod:`sockshock.clients`.

Modules, bottom-up: ``_address`` (where a client may connect: loopback and Unix
sockets only; socket errors as text), ``_connect`` (the one client every
in-process connection to a server under test is made with: :func:`connect`,
:func:`request`, and :func:`open_socket` for the misbehaving ones), ``_control`` (bounded waiting, and
``Control``: what a run's connections share), ``_conn`` (one stream connection,
``Connection``, and watching several), ``_results`` (``StreamResult``,
``DatagramResult``), ``_run`` (``ClientRun``), ``_behaviour`` (what each client
does), ``_limits`` (the options' bounds and their checks), ``_functions`` (the
public client functions), ``_spec`` (``ClientSpec``)."""

from sockshock._clients._address import Address
from sockshock._clients._conn import Connection, Outcome
from sockshock._clients._connect import TRANSPORTS, ClientSocket, connect, open_socket, request
from sockshock._clients._functions import (
    HTTP_REQUEST,
    HTTP_REQUEST_HEAD,
    HTTP_REQUEST_PART,
    connect_and_idle,
    connection_flood,
    datagram_burst,
    drip_feed,
    half_close,
    never_reads,
    rst_on_close,
    slowloris,
)
from sockshock._clients._limits import KINDS, LIMITS, Limit
from sockshock._clients._results import ClientResult, DatagramResult, StreamResult
from sockshock._clients._run import ClientRun
from sockshock._clients._script import (
    ABBREVIATE_OVER,
    MAX_READ,
    ClientScript,
    Close,
    HalfClose,
    Pause,
    Read,
    Reset,
    ScriptRun,
    ScriptStep,
    Send,
    Step,
    StepResult,
    abbreviate,
    as_script,
    check_steps,
    outcome_of,
    wanted,
)
from sockshock._clients._spec import ClientSpec

__all__ = [
    "ABBREVIATE_OVER",
    "HTTP_REQUEST",
    "HTTP_REQUEST_HEAD",
    "HTTP_REQUEST_PART",
    "KINDS",
    "LIMITS",
    "MAX_READ",
    "TRANSPORTS",
    "Address",
    "ClientResult",
    "ClientRun",
    "ClientScript",
    "ClientSocket",
    "ClientSpec",
    "Close",
    "Connection",
    "DatagramResult",
    "HalfClose",
    "Limit",
    "Outcome",
    "Pause",
    "Read",
    "Reset",
    "ScriptRun",
    "ScriptStep",
    "Send",
    "Step",
    "StepResult",
    "StreamResult",
    "abbreviate",
    "as_script",
    "check_steps",
    "connect",
    "connect_and_idle",
    "connection_flood",
    "datagram_burst",
    "drip_feed",
    "half_close",
    "never_reads",
    "open_socket",
    "outcome_of",
    "request",
    "rst_on_close",
    "slowloris",
    "wanted",
]
