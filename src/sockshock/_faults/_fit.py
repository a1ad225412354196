"""The one rule for "can this plan ever fire here": a fault model fits a server (or a
proxy, or ``drive()``) when it can act on that transport, with or without TLS, and
with or without ``accept()`` calls to act on. A model that can never fire is a
mistake: the test would not test what it says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sockshock._faults._core import ACCEPT, PLAINTEXT, FaultModel
from sockshock._util import InvalidArgument

__all__ = ["check_fit", "misfit"]


def misfit(
    model: FaultModel, *, transport: str, tls: bool, accepts: bool = True, proxied: bool = False
) -> str | None:
    """Why ``model`` can never fire on a ``transport`` (``"stream"``/``"datagram"``)
    server with or without ``tls``, where ``accepts`` says whether connections are
    accepted (not in ``drive()``, nor through a UDP proxy) and ``proxied`` whether
    the fault proxy carries it out; None if it can."""
    if model.proxy_only and not proxied:
        return (
            "it acts on what only the fault proxy sees (the server's closing, or its "
            "writes cut or stalled on the way), not on a server's own socket calls; put "
            "a FaultProxy in front of the server, or use direction='in'"
        )
    if not model.applies_to_transport(transport):
        other = "datagrams" if transport == "stream" else "stream connections"
        return f"it acts on {other} only"
    if model.layer == PLAINTEXT and not tls:
        return "layer='plaintext' faults act above TLS, and this runs without TLS"
    if not accepts and model.applies_to_kind(ACCEPT) and not model.applies_to_transport("datagram"):
        return "it fails accept() calls, and none happen here"
    return None


def check_fit(
    models: Iterable[FaultModel],
    *,
    transport: str,
    tls: bool,
    target: str,
    where: str | Callable[[int, FaultModel, str], str],
    accepts: bool = True,
    proxied: bool = False,
    fix: str = "leave it out, or serve a server it can act on",
) -> None:
    """Raise :class:`InvalidArgument` for the first model that can never fire.

    The message names the model, where it came from (``where``: a string, or a
    function of the model's index, the model and the reason's key -- ``"model"`` or
    ``"layer"`` -- for scenario files' ``file:line``), ``target`` (``"UDPServer"``,
    ``"a tcp proxy"``, ``"drive()"``), the reason and ``fix``.
    """
    for index, model in enumerate(models):
        reason = misfit(model, transport=transport, tls=tls, accepts=accepts, proxied=proxied)
        if reason is None:
            continue
        key = "layer" if reason.startswith("layer=") else "model"
        what = f"{model!r} cannot fire on {target}: {reason}; {fix}"
        if callable(where):  # a file's line: first, as compilers print it
            raise InvalidArgument(f"{where(index, model, key)}: {what}")
        raise InvalidArgument(f"{what} (from {where})")
