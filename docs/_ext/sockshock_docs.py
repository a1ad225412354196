"""Directives that render reference tables from sockshock's own definitions, so the
site cannot drift from the code:

* ``sockshock-fault-models`` -- every registered fault model, its signature, the
  transports it acts on (asked of the model itself) and whether it works above TLS;
* ``sockshock-pytest-settings`` -- the plugin's options, ini settings and marker keys
  (``sockshock._pytest._settings.SETTINGS``);
* ``sockshock-pytest-markers`` -- the markers as the plugin registers them;
* ``sockshock-pytest-fixtures`` -- the plugin's fixtures and their docstrings;
* ``sockshock-bench-results`` -- the recorded benchmark runs in ``bench/results/``.

Generated text is made safe for the page it lands on: option names (``--api``) become
code, so that no typography touches them, and a table cell's ``|`` is escaped, so
that it cannot split the row. A check after each page is read (``doctree-read``)
warns -- an error under ``-W`` -- when a page shows an option with its ``--`` turned
into a dash (an en dash before ``api``) or a table cell with a code span cut open by a stray ``|``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
LOGGER = logging.getLogger(__name__)
# ``--name`` or ``--name=VALUE`` standing on its own in prose (not ``a--b``).
OPTION = re.compile(r"(?<![\w`-])--[A-Za-z][\w-]*(?:=[^\s`,;:)]+)?")


def literal(text: str) -> str:
    """``text`` as inline code in Markdown."""
    return "`" + text.replace("`", "") + "`"


def options_as_code(text: str, tick: str) -> str:
    """``text`` with each option name that is not code yet (``--api``) made code, with
    ``tick`` (`` ` `` for Markdown, ````` `` ````` for reStructuredText)."""
    parts = text.split(tick)
    # Even parts are outside code: with an odd number of ticks, leave the text alone.
    if len(parts) % 2 == 0:
        return text
    for i in range(0, len(parts), 2):
        parts[i] = OPTION.sub(lambda m: tick + m.group(0) + tick, parts[i])
    return tick.join(parts)


def markdown(text: str) -> str:
    """A docstring's or help text's reStructuredText inline markup, as Markdown, on
    one line, its option names as code."""
    text = " ".join(text.split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)  # roles: as code
    return options_as_code(text.replace("``", "`"), "`")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown pipe table; each cell is Markdown on one line. A ``|`` in a cell --
    ``on|off`` in an option's metavar -- is escaped: it would end the cell even inside
    code (and shift the rest of the row into the wrong columns)."""

    def cell(text: str) -> str:
        return re.sub(r"(?<!\\)\|", r"\\|", text)

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(map(cell, row)) + " |" for row in rows)
    return lines


class _MarkdownDirective(SphinxDirective):
    """Renders the Markdown its ``markdown()`` returns, as if written on the page."""

    has_content = False

    def markdown(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        source = self.get_source_info()[0]
        self.state.nested_parse(
            StringList(self.markdown(), source=source), self.content_offset, container
        )
        return container.children


def _sample(cls: type) -> Any:
    """An instance of a fault model with its required fields at small valid values and
    its direction at "both", to ask what it can act on."""
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name == "direction":
            kwargs["direction"] = "both"
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            kwargs[field.name] = 1 if "probab" not in field.name else 0.5
    return cls(**kwargs)


def _signature(cls: type) -> str:
    """``Name(arg, arg=default)``: the model's own arguments, not the scope ones."""
    parameters = [
        p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
        for p in inspect.signature(cls).parameters.values()
        if p.kind is not inspect.Parameter.KEYWORD_ONLY
    ]
    return f"{cls.__name__}({', '.join(parameters)})"


class FaultModels(_MarkdownDirective):
    def markdown(self) -> list[str]:
        from sockshock._faults._registry import MODELS
        from sockshock._util import InvalidArgument

        rows = []
        for name, cls in MODELS.items():
            model = _sample(cls)
            transports = [t for t in ("stream", "datagram") if model.applies_to_transport(t)]
            try:
                above_tls = _sample(cls).__class__(
                    **{**dataclasses.asdict(model), "layer": "plaintext"}
                )
            except (InvalidArgument, TypeError):
                above_tls = None
            doc = inspect.getdoc(cls) or ""
            rows.append(
                [
                    f"{{py:class}}`{_signature(cls)} <sockshock.faults.{name}>`",
                    " and ".join(transports),
                    "yes" if above_tls is not None else "no",
                    markdown(doc.split("\n\n")[0]),
                ]
            )
        self.env.note_dependency(str(ROOT / "src/sockshock/_faults/_registry.py"))
        return table(["model", "transport", "above TLS", "what the server sees"], rows)


def _default(value: Any) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return literal(str(value))


def settings_table() -> list[str]:
    """The plugin's settings as a Markdown table: option, ini setting, marker key,
    default, what."""
    from sockshock._pytest._settings import SETTINGS

    rows = []
    for s in SETTINGS.values():
        option = literal(f"{s.flag}={s.metavar}") if s.option else "no"
        ini = literal(s.dest) if s.ini else "no"
        marker = literal(f"{s.name}=") if s.marker else "no"
        rows.append([option, ini, marker, _default(s.default), markdown(s.help)])
    return table(
        ["command line", "ini setting", "`@pytest.mark.sockshock`", "default", "what"], rows
    )


class PytestSettings(_MarkdownDirective):
    def markdown(self) -> list[str]:
        return settings_table()


class PytestMarkers(_MarkdownDirective):
    def markdown(self) -> list[str]:
        from sockshock._pytest._plugin import _MARKERS

        rows = []
        for line in _MARKERS:
            signature, _, text = line.partition(": ")
            rows.append([literal(f"@pytest.mark.{signature}"), markdown(text)])
        return table(["marker", "what"], rows)


def _fixtures() -> list[tuple[str, str, str]]:
    """(name, scope, docstring) of every fixture the plugin module defines."""
    import sockshock.pytest_plugin as plugin

    found = []
    for name, value in vars(plugin).items():
        definition = getattr(value, "_fixture_function_marker", None) or getattr(
            value, "_pytestfixturefunction", None
        )
        if definition is None:
            continue
        function = getattr(value, "_fixture_function", None) or getattr(value, "__wrapped__", value)
        found.append((name, definition.scope, inspect.getdoc(function) or ""))
    return sorted(found)


class PytestFixtures(_MarkdownDirective):
    def markdown(self) -> list[str]:
        rows = [[literal(name), scope, markdown(doc)] for name, scope, doc in _fixtures()]
        rows.append(
            [
                "`server_class`",
                "function",
                "A server class, one per test: given by `@pytest.mark.sockshock_servers(...)`.",
            ]
        )
        return table(["fixture", "scope", "what"], rows)


class BenchResults(_MarkdownDirective):
    """The newest recorded run of each benchmark, in full; older runs by file name."""

    def markdown(self) -> list[str]:
        results = ROOT / "bench" / "results"
        newest: dict[str, tuple[str, dict[str, Any]]] = {}
        older: list[str] = []
        for path in sorted(results.glob("*.json")):  # dated names: oldest first
            self.env.note_dependency(str(path))
            record = json.loads(path.read_text(encoding="utf-8"))
            if record["benchmark"] in newest:
                older.append(newest[record["benchmark"]][0])
            newest[record["benchmark"]] = (path.name, record)
        lines: list[str] = []
        for name in sorted(newest):
            filename, record = newest[name]
            load = record["load_average"]
            lines += [
                f"**`{record['command']}`** (`bench/results/{filename}`)",
                "",
                f"Run {record['date']} on {record['machine']}, Python {record['python']}, "
                f"commit `{record['commit']}`; load average (1, 5, 15 min) "
                f"{load[0]}, {load[1]}, {load[2]} before and {load[3]}, {load[4]}, {load[5]} after; "
                f"goals: {record.get('goals', 'met')}.",
                "",
                "````text",
                *record["output"].rstrip("\n").splitlines(),
                "````",
                "",
            ]
        if older:
            lines += [
                "Earlier runs, in `bench/results/`: " + ", ".join(f"`{n}`" for n in older) + "."
            ]
        if not lines:
            lines = ["No benchmark run is recorded yet."]
        return lines


def _rst(help_text: str) -> str:
    """A help text as reStructuredText: backslashes doubled (``'ping\\n'`` would lose
    its backslash) and option names as code (``--api`` would lose its ``--`` to an en dash)."""
    return options_as_code(help_text.replace("\\", "\\\\"), "``")


def _escaped(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` with every help text made reStructuredText (``_rst``), since
    sphinx-argparse reads help texts as reStructuredText."""
    if parser.description:
        parser.description = _rst(parser.description)
    if parser.epilog:
        parser.epilog = _rst(parser.epilog)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = _rst(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.help:
                    choice.help = _rst(choice.help)
            for sub in action.choices.values():
                _escaped(sub)
    return parser


def cli_parser() -> argparse.ArgumentParser:
    """``sockshock``'s parser, for the command-line reference."""
    from sockshock._cli._main import _parser

    return _escaped(_parser())


def proxy_parser() -> argparse.ArgumentParser:
    """``sockshock proxy``'s parser, for the command-line reference."""
    from sockshock._cli._proxy import _proxy_parser

    return _escaped(_proxy_parser())


# An option whose ``--`` typography made an en or em dash (then a letter or a hyphen).
MANGLED_OPTION = re.compile(r"[\u2013\u2014][A-Za-z-]")


def check_page(app: Sphinx, doctree: nodes.document) -> None:
    """Warn about what -W would not otherwise see: an option name shown with a dash
    for its ``--`` (smart quotes in prose or a help text), and a table cell holding a
    literal backtick -- a code span a stray ``|`` cut open, the rest of its row shifted
    or lost."""
    for text in doctree.findall(nodes.Text):
        if isinstance(text.parent, (nodes.literal, nodes.literal_block, nodes.raw)):
            continue
        found = MANGLED_OPTION.search(text.astext())
        if found:
            LOGGER.warning(
                "option name shown with a dash for its '--': %r (write it as code, "
                "or keep smartquotes_action without 'D')",
                text.astext()[max(0, found.start() - 20) : found.end() + 20],
                location=text.parent,
                type="sockshock",
                subtype="dash",
            )
    for entry in doctree.findall(nodes.entry):
        for text in entry.findall(nodes.Text):
            if "`" in text.astext() and not isinstance(text.parent, (nodes.literal,)):
                LOGGER.warning(
                    "table cell with a stray backtick (a '|' split a code span?): %r",
                    entry.astext(),
                    location=entry,
                    type="sockshock",
                    subtype="table",
                )
                break


# Objects the reference shows by the name a test knows them by, not their class's
# private path: (module, class) -> (what it is, its name in a test).
FIXTURE_OBJECTS = {("sockshock._pytest._fixture", "SockshockFixture"): ("fixture", "sockshock")}


def fixture_objects(app: Sphinx, doctree: nodes.document) -> None:
    """Show the ``sockshock`` fixture's object as ``fixture sockshock`` -- what a test
    receives -- rather than ``class sockshock._pytest._fixture.SockshockFixture(request,
    stack, ...)``, a private class no test constructs or imports."""
    for signature in doctree.findall(addnodes.desc_signature):
        key = (signature.get("module"), signature.get("fullname"))
        if key in FIXTURE_OBJECTS:
            kind, name = FIXTURE_OBJECTS[key]
            signature.children = []
            signature += addnodes.desc_annotation(kind + " ", kind + " ")
            signature += addnodes.desc_name(name, name)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", fixture_objects)
    app.connect("doctree-read", check_page)
    app.add_directive("sockshock-fault-models", FaultModels)
    app.add_directive("sockshock-pytest-settings", PytestSettings)
    app.add_directive("sockshock-pytest-markers", PytestMarkers)
    app.add_directive("sockshock-pytest-fixtures", PytestFixtures)
    app.add_directive("sockshock-bench-results", BenchResults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
