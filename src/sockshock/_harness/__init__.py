"""The harness: running servers for tests (serving, stopping, error reporting) and
the leak audit.

Modules, bottom-up: ``_stacks`` (thread stacks for reports), ``_failures``
(handler failures, forked children's included), ``_instrument`` (what the harness
adds to a server it runs), ``_stop`` (one bounded stop), ``_resolve`` (checking
``serving()``'s arguments), ``_handle`` (``ServerHandle``), ``_serving``
(``serving()``), ``_audit`` (the leak audit).
"""
