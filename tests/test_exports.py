"""Public modules re-export what the private ones implement, each name once."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = [
    "sockshock",
    "sockshock.faults",
    "sockshock.layer",
    "sockshock.handlers",
    "sockshock.socketserver",
    "sockshock.clients",
    "sockshock.tls",
    "sockshock.scripts",
    "sockshock.strategies",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_exists_once(name: str) -> None:
    module = importlib.import_module(name)
    for export in module.__all__:
        assert hasattr(module, export), f"{name}.{export}"
    assert len(set(module.__all__)) == len(module.__all__), f"{name} exports a name twice"


def test_each_object_has_one_public_home() -> None:
    homes: dict[int, str] = {}
    for name in PUBLIC:
        module = importlib.import_module(name)
        for export in module.__all__:
            obj = getattr(module, export)
            where = f"{name}.{export}"
            assert homes.setdefault(id(obj), where) == where, (
                f"{where} is also exported as {homes[id(obj)]}"
            )
