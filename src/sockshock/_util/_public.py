"""Public objects named by their public module, not the private one defining them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T", bound=Callable[..., object])


def exported_by(module: str, *, name: str | None = None) -> Callable[[_T], _T]:
    """Name the decorated class or function by the public module that exports it:
    ``@exported_by("sockshock.faults")`` sets ``__module__`` (and ``name``, if it is
    exported under another name than its own: ``find`` as ``load``, its
    ``__name__`` and ``__qualname__``).

    Tracebacks, pytest's summaries, reprs, pickles and the reference then say
    ``sockshock.errors.InvalidArgument``, not
    ``sockshock._util._errors.InvalidArgument`` -- from the definition on, however
    the object is reached: the pytest plugin and the harness use the private
    packages and never import the public modules, so naming an object when its
    public module is imported (as trio's ``fixup_module_metadata`` does) left a
    test that only took the fixture with private names. NumPy names its objects
    the same way (``numpy._utils.set_module``).

    Pickling keeps working: it looks an object up by ``__module__`` and
    ``__qualname__`` -- importing the public module if need be -- and ``module``
    exports it under that name. The public modules only re-export; that every
    name they export is named by them, and every object named so is exported, is
    for tests/test_public_names.py and tests/test_public_names_reached.py to check.

    Args:
        module: the public module's name (``"sockshock"`` for the top level).
        name: the name it exports the object under, if not its own.
    """
    if module != "sockshock" and not module.startswith("sockshock."):
        raise ValueError(f"{module!r} is not one of sockshock's modules")
    if any(part.startswith("_") for part in module.split(".")):
        raise ValueError(f"{module!r} is a private module, not a public one")

    def name_it(obj: _T) -> _T:
        obj.__module__ = module
        if name is not None:
            obj.__name__ = obj.__qualname__ = name
        return obj

    return name_it
