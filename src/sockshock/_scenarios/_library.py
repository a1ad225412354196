"""Where scenarios are found: a path, or a name in the scenario library.

The library is ``scenarios/*.toml``: the repository's own folder (beside ``src/``
in a checkout or an editable install) or the copy packaged as
``sockshock/_scenario_library`` in a wheel.
"""

from __future__ import annotations

import os
from pathlib import Path

from sockshock._scenarios._model import Scenario, load
from sockshock._util import InvalidArgument, check_type, did_you_mean, exported_by

__all__ = ["find", "library", "locate", "names"]

_PACKAGE = Path(__file__).resolve().parent.parent


def library() -> list[Path]:
    """The folders that hold the scenario library (those that exist)."""
    candidates = [_PACKAGE / "_scenario_library", _PACKAGE.parent.parent / "scenarios"]
    return [path for path in candidates if path.is_dir()]


@exported_by("sockshock.scenarios")
def names() -> list[str]:
    """Every scenario name in the library, sorted.

    Returns:
        The names, such as ``"slowloris"``: :func:`load` takes each.
    """
    return sorted({path.stem for folder in library() for path in folder.glob("*.toml")})


def locate(spec: str | Path, *, source: str = "scenario") -> Path:
    """The file of a scenario given by path (``scenarios/slowloris.toml``) or by name
    (``slowloris``).

    Raises:
        InvalidArgument: nothing by that path or name (the message lists the names
            the library has).
    """
    check_type("source", source, str, source="scenarios.load()")
    if not isinstance(spec, (str, os.PathLike)):
        raise InvalidArgument(
            f"expected a scenario's name or a .toml file (str or os.PathLike) but got "
            f"{source}={spec!r} (type={type(spec).__name__})"
        )
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise InvalidArgument(f"{source}={str(spec)!r}: no such file")
        return path
    for folder in library():
        candidate = folder / f"{spec}.toml"
        if candidate.is_file():
            return candidate
    known = names()
    raise InvalidArgument(
        f"{source}={str(spec)!r} is neither a scenario file nor a name in "
        f"the library; {did_you_mean(str(spec), known)}known: {', '.join(known) or '(none found)'}"
    )


@exported_by("sockshock.scenarios", name="load")
def find(spec: str | Path, *, source: str = "scenario") -> Scenario:
    """A scenario by path (``scenarios/slowloris.toml``) or by name (``slowloris``).

    Args:
        spec: a path to a ``.toml`` file, or the name of a scenario in the library.
        source: what gave ``spec``, for the error message.

    Returns:
        The scenario, checked.

    Raises:
        InvalidArgument: nothing by that path or name (the message lists the names
            the library has); for a broken file, every mistake in it together, each
            naming the file, the line and the key.
    """
    return load(locate(spec, source=source))
