"""sockshock: find out how socket servers behave when the network misbehaves.

The layers, bottom-up (dependencies point down only; public modules re-export,
the code lives in ``_private`` modules of a few hundred lines):

* ``_errors`` -- every exception class and the argument checks.
* ``_faults/`` -- pure, seeded fault models and the FaultPlan (no I/O: ``_core``
  operations, decisions and scopes; ``_stream``, ``_datagram``, ``_lifecycle``
  models; ``_plan``). Public: ``sockshock.faults``.
* ``socketserver`` -- the drop-in ``socketserver`` (a public module in its own
  right, CPython-shaped so that it diffs against ``Lib/socketserver.py``) whose
  sockets come from a socket layer. ``_servers/`` -- the socket-layer protocol
  (``_layer``) and its conformance kit (``_layerkit``; public: ``sockshock.layer``),
  the catalogue of server classes (``_catalog``), the runner of CPython's own suite
  (``_cpython_suite``), sockshock's loop for standard-library classes (``_graft``),
  the standard module looked up, never imported (``_stdlib``).
* ``_injection/`` -- the only code that carries faults out on sockets: ``_layer``
  (FaultLayer), ``_socket`` (FaultySocket) with its ``_stream`` and ``_datagram``
  paths, ``_forks`` (forked children's decisions), ``_clock``; in memory, for
  ``drive()``: ``_memory`` (buffers with the kernel's semantics) and
  ``_memory_socket`` (MemorySocket: the same paths over them; MemoryLayer); TLS
  over any socket: ``_tls_engine`` (an SSLObject over memory BIOs, fed from the wire), ``_tls``
  (TLSSocket, the socket API on it), ``_plaintext`` (faults above TLS).
* ``_harness/`` -- running servers for tests: ``_resolve`` (arguments checked up
  front), ``_instrument``, ``_serving`` (``serving()``), ``_handle``, ``_stop`` (one
  bounded stop), ``_failures`` (handler errors), ``_audit`` (the leak audit),
  ``_install`` (``install()``, ``inject()``), ``_tls`` (``serving(tls=...)``),
  ``_certs`` (trustme certificates; public: ``sockshock.tls``), ``_script``
  (client scripts; public: ``sockshock.scripts``), ``_drive`` (``drive()``: a
  handler against a scripted client, in memory), ``_memclient`` (a script carried
  out in memory).
* ``_proxy/`` -- the fault proxy, for servers in other processes: ``_addresses``
  (loopback and Unix addresses, the plan checked against the transport), ``_loop``
  (one I/O thread: epoll or poll, timers), ``_pipe`` (one direction of a stream),
  ``_streams`` (accepting, a connection's life cycle), ``_datagrams`` (UDP
  relaying), ``_fault_proxy`` (``FaultProxy``), ``_factory`` (``proxy_for``, the
  fixture function).
* ``_clients/`` -- real misbehaving clients over real sockets: ``_address``
  (loopback and Unix sockets only), ``_control`` (bounded waiting, a run's shared
  state), ``_conn`` (one stream connection), ``_results``, ``_run`` (``ClientRun``),
  ``_behaviour`` (what each client does), ``_limits``, ``_functions`` (the client
  functions), ``_spec`` (``ClientSpec``). Public: ``sockshock.clients``.
* ``_scenarios/`` -- scenario files: ``_toml`` (reading, with each key's line),
  ``_model`` (checked), ``_library`` (by name or path), ``_run`` (running and judging
  one, in this process or through the proxy). Public: ``sockshock.scenarios``.
* ``_frontends/`` -- what users drive: the pytest plugin (``_settings``,
  ``_plugin``, ``_fixture``; entry point ``sockshock.pytest_plugin``) and the command
  line (``_cli``; ``_run``, ``_run_checks``, ``_replies``: the built-in checks;
  ``_scenario_cli``: scenarios and ``check``; ``_proxy_cli``: ``sockshock proxy``;
  ``sockshock.cli``), hypothesis glue for ``@given`` tests (``_hypothesis``), and
  hypothesis strategies and the stateful machine (``_strategies``, ``_machine``;
  public: ``sockshock.strategies``, which alone imports hypothesis).
* ``handlers`` -- small request handlers for demonstrations and checks.
"""

from sockshock import errors, faults, layer  # noqa: F401 (``sockshock.errors.X`` after ``import sockshock``)
from sockshock._harness import ServerHandle, Transcript, audit, drive, inject, install, serving
from sockshock._proxy import FaultProxy
from sockshock._stdlib import server_kinds
from sockshock._util import __version__ as __version__

__all__ = [
    "FaultProxy",
    "ServerHandle",
    "Transcript",
    "audit",
    "drive",
    "inject",
    "install",
    "server_kinds",
    "serving",
]
