"""Run CPython's own ``test_socketserver`` against ``sockshock.socketserver``.

Usage: ``python -m sockshock._conformance ours|stdlib RESULT.json [SUITE]`` with
any interpreter (3.10 to 3.13) whose ``test`` package is installed, from a scratch
directory (the suite creates files in the current directory). SUITE defaults to
``test_socketserver``; the suites of the stdlib's own socketserver consumers
(``test_httpservers``, ``test_wsgiref``, ``test_xmlrpc``, ``test_logging``) run the
same way, with those modules built on ours. Writes one JSON
object to RESULT.json: the outcome of every test
(``{"test id": "ok" | "skip: reason" | "FAIL: ..."}``); the suite's own chatter
goes to stdout and stderr.

"ours" puts ``src/sockshock/socketserver.py`` in place of the standard module, as if
the file had been copied over ``Lib/socketserver.py``: it is imported under the name
``socketserver``, so that the suite's ``MiscTestCase.test_all`` sees its classes as
defined in ``socketserver``. "stdlib" runs the suite unchanged, as the oracle of
which tests this interpreter skips.

This module is deliberately self-contained: it must run on every interpreter with
nothing but ``sockshock`` on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import unittest
from typing import Any


def _install_ours() -> object:
    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "socketserver.py"
    )
    spec = importlib.util.spec_from_file_location("socketserver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["socketserver"] = module
    spec.loader.exec_module(module)
    return module


class _Recorder(unittest.TextTestResult):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "ok"

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = f"skip: {reason}"

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self.outcomes[test.id()] = "FAIL: " + self.errors[-1][1]

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self.outcomes[test.id()] = "FAIL: " + self.failures[-1][1]


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[1] not in ("ours", "stdlib"):
        print(
            f"usage: {argv[0]} ours|stdlib RESULT.json [SUITE]; got {argv[1:]!r}", file=sys.stderr
        )
        return 2
    which, result_path = argv[1], argv[2]
    suite_name = argv[3] if len(argv) == 4 else "test_socketserver"
    if which == "ours":
        module = _install_ours()
    import importlib

    suite_module = importlib.import_module(f"test.{suite_name}")
    if which == "ours":
        assert sys.modules["socketserver"] is module, "the suite replaced our module"
        for consumer in ("http.server", "xmlrpc.server"):
            if consumer in sys.modules:
                assert sys.modules[consumer].socketserver is module, f"{consumer} is not on ours"
    suite = unittest.defaultTestLoader.loadTestsFromModule(suite_module)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Recorder)
    result = runner.run(suite)
    assert isinstance(result, _Recorder)
    with open(result_path, "w", encoding="utf-8") as out:
        json.dump(
            {"python": sys.version.split()[0], "module": which, "outcomes": result.outcomes}, out
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
