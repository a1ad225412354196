"""The built-in robustness checks as plain functions (``_checks``: each check, the
:class:`Target` it takes), how replies are judged (``_replies``), failures in full
(``_details``), and running them -- servers x checks, seeds, the leak audit,
outcomes (``_runner``; public: ``sockshock.checks.check_server``). No pytest here.
"""

from sockshock._checks._checks import CHECKS, TIMEOUT, Check, Target
from sockshock._checks._details import ErrorDetail, Where, describe_error
from sockshock._checks._replies import Expectation
from sockshock._checks._runner import (
    CheckResult,
    check_seed_for,
    check_server,
    leak_lines,
    leaks_json,
    planned,
    run_matrix,
    session_seed,
)

__all__ = [
    "CHECKS",
    "TIMEOUT",
    "Check",
    "CheckResult",
    "ErrorDetail",
    "Expectation",
    "Target",
    "Where",
    "check_seed_for",
    "check_server",
    "describe_error",
    "leak_lines",
    "leaks_json",
    "planned",
    "run_matrix",
    "session_seed",
]
