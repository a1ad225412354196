"""Public objects named by their public module, not the private one defining them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import FunctionType


def publish(module: str, namespace: Mapping[str, object], names: Iterable[str]) -> None:
    """Set ``__module__`` of each class and function of ``namespace`` that ``names``
    lists (a public module's ``__all__``) to ``module``, as trio does: tracebacks,
    pytest's summaries, reprs and the reference then say
    ``sockshock.errors.InvalidArgument``, not ``sockshock._util._errors.InvalidArgument``.

    Pickling keeps working: it looks an object up by ``__module__`` and
    ``__qualname__``, and ``module`` exports it under that name (an object exported
    under another name than its own -- ``find`` as ``load`` -- takes that name).
    Objects defined outside sockshock's private modules, and instances, are left as
    they are.

    Args:
        module: the public module's name (its ``__name__``).
        namespace: the public module's ``globals()``.
        names: the names it exports.
    """
    for name in names:
        obj = namespace[name]
        if not isinstance(obj, (type, FunctionType)):
            continue  # an instance, a constant
        home = obj.__module__
        if not home.startswith("sockshock._") or "." in obj.__qualname__:
            continue
        obj.__module__ = module
        if obj.__name__ != name:
            obj.__name__ = obj.__qualname__ = name
