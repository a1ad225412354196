"""The built-in checks of ``sockshock run`` (``_checks``) and how replies are judged (``_replies``)."""

from sockshock._checks._replies import Expectation

__all__ = ["Expectation"]
