"""Real misbehaving clients over real sockets: the code behind :mod:`sockshock.clients`.

Modules, bottom-up: ``_address`` (where a client may connect: loopback and Unix
sockets only; socket errors as text), ``_control`` (bounded waiting, and
``Control``: what a run's connections share), ``_conn`` (one stream connection,
``Connection``, and watching several), ``_results`` (``StreamResult``,
``DatagramResult``), ``_run`` (``ClientRun``), ``_behaviour`` (what each client
does), ``_limits`` (the options' bounds and their checks), ``_functions`` (the
public client functions), ``_spec`` (``ClientSpec``).
"""
