"""The built site shows what the code says: generated tables keep every cell in its
column (a ``|`` in ``--sockshock-audit=on|off`` once split its row and lost the
description), and no option name reads with a dash for its ``--`` (an en dash, as
Sphinx's smart quotes once made of argparse help texts).

The site is built here as CI builds it (``-W``); the extension's own page check
(``docs/_ext/sockshock_docs.py``: ``check_page``) is shown to catch both defects on
a small project built with the typography that caused them. Needs the ``[docs]``
extra; without Sphinx these tests are skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from tests._support import SUBPROCESS_TIMEOUT

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")
pytest.importorskip("sphinxarg")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# An option name whose "--" became an en or em dash.
MANGLED = re.compile(r"[\u2013\u2014][A-Za-z-]")


@pytest.fixture(scope="module")
def ext() -> Iterator[ModuleType]:
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import sockshock_docs

        yield sockshock_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))


class _Tables(HTMLParser):
    """Each ``<table>``'s rows, as (cell texts, code texts per cell)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str]]]] = []
        self._cell: list[str] | None = None
        self._code: list[str] | None = None
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell, self._code = [], []
        elif tag == "code":
            self._in_code += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._code is not None:
            self.tables[-1][-1].append(("".join(self._cell).strip(), "".join(self._code)))
            self._cell = self._code = None
        elif tag == "code":
            self._in_code -= 1

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self._code is not None:
            self._cell.append(data)
            if self._in_code:
                self._code.append(data)


def tables(html: str) -> list[list[list[tuple[str, str]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _render(markdown_lines: list[str]) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render("\n".join(markdown_lines) + "\n")


def test_a_pipe_in_a_cell_stays_in_its_cell(ext: ModuleType) -> None:
    lines = ext.table(["option", "what"], [["`--x=on|off`", "a | b"], ["`--y`", "c"]])
    (table,) = tables(_render(lines))
    assert [[text for text, _ in row] for row in table] == [
        ["option", "what"],
        ["--x=on|off", "a | b"],
        ["--y", "c"],
    ]


def test_the_settings_table_keeps_each_setting_in_one_row(ext: ModuleType) -> None:
    from sockshock._pytest._settings import SETTINGS

    (table,) = tables(_render(ext.settings_table()))
    header, *rows = table
    assert len(header) == 5
    assert all(len(row) == 5 for row in rows), [row for row in rows if len(row) != 5]
    on_command_line = [s for s in SETTINGS.values() if s.option]
    assert [row[0][1] for row in rows if row[0][1]] == [
        f"{s.flag}={s.metavar}" for s in on_command_line
    ]
    assert all(row[4][0] for row in rows), "a setting lost its description"
    assert any("|" in s.metavar for s in on_command_line if s.metavar)  # the case that broke


def test_option_names_in_generated_text_become_code(ext: ModuleType) -> None:
    rst = "the fault seed; with --api, every proxy's (not ``--unix``); a--b"
    assert ext.options_as_code(rst, "``") == (
        "the fault seed; with ``--api``, every proxy's (not ``--unix``); a--b"
    )
    assert ext.markdown("run --sockshock-seed=N, or `--x`") == (
        "run `--sockshock-seed=N`, or `--x`"
    )


def _sphinx(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", source, out],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def check_no_page_shows_an_option_with_a_dash(site: Path) -> None:
    mangled = []
    for page in sorted(site.rglob("*.html")):
        for found in MANGLED.finditer(_text(page.read_text(encoding="utf-8"))):
            mangled.append(f"{page.relative_to(site)}: {found.group(0)!r}")
    assert not mangled, mangled


def check_the_command_line_reference_shows_option_names_as_typed(site: Path) -> None:
    text = _text((site / "reference" / "cli.html").read_text(encoding="utf-8"))
    for option in ("with --api", "with --unix", "--target HOST:PORT"):  # help texts
        assert option in text, option


def check_the_plugin_reference_tables_have_whole_rows(site: Path) -> None:
    from sockshock._pytest._settings import SETTINGS

    page = (site / "reference" / "pytest-plugin.html").read_text(encoding="utf-8")
    found = tables(page)
    assert found
    for table in found:
        widths = {len(row) for row in table}
        assert len(widths) == 1, f"rows of different widths: {table}"
        for row in table:
            assert not any("`" in text for text, _ in row), f"a code span cut open: {row}"
    (settings,) = [t for t in found if t[0][0][0] == "command line"]
    shown = {row[0][1] for row in settings[1:]}
    assert {f"{s.flag}={s.metavar}" for s in SETTINGS.values() if s.option} <= shown


def test_the_page_check_catches_both_defects(tmp_path: Path) -> None:
    """With Sphinx's default typography (dashes on), a ``--`` in prose and an
    unescaped ``|`` in a code span of a table fail a -W build, each named."""
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        'extensions = ["myst_parser", "sockshock_docs"]\n',
        encoding="utf-8",
    )
    (tmp_path / "index.md").write_text(
        "# Page\n\nStart it with --api and a port.\n\n"
        "| option | what |\n|---|---|\n| `--audit=on|off` | the leak audit |\n",
        encoding="utf-8",
    )
    proc = _sphinx(tmp_path, tmp_path / "_build")
    assert proc.returncode != 0
    assert "option name shown with a dash" in proc.stderr, proc.stderr
    assert "\u2013api" in proc.stderr, proc.stderr
    assert "table cell with a stray backtick" in proc.stderr, proc.stderr

    # Written as the generated pages write them, the same page is clean.
    (tmp_path / "index.md").write_text(
        "# Page\n\nStart it with `--api` and a port.\n\n"
        "| option | what |\n|---|---|\n| `--audit=on\\|off` | the leak audit |\n",
        encoding="utf-8",
    )
    proc = _sphinx(tmp_path, tmp_path / "_build2")
    assert proc.returncode == 0, proc.stderr


def check_reference_signatures_show_public_paths_only(site: Path) -> None:
    """Every documented object is shown under its public module (``__module__``
    set by the public modules), and the fixture's object as what a test receives."""
    private = []
    for page in sorted((site / "reference").glob("*.html")):
        html = page.read_text(encoding="utf-8")
        for signature in re.findall(r'<dt class="sig sig-object py".*?</dt>', html, re.S):
            if "sockshock._" in _text(signature):
                private.append(f"{page.name}: {' '.join(_text(signature).split())[:120]}")
    assert not private, private
    plugin = _text((site / "reference" / "pytest-plugin.html").read_text(encoding="utf-8"))
    assert "fixture sockshock" in plugin
    assert "SockshockFixture" not in plugin


def test_the_built_site(tmp_path: Path) -> None:
    """The whole site, built as CI builds it (once: one test, so that xdist workers
    do not each build it), then each check above on its pages."""
    proc = _sphinx(DOCS, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check_no_page_shows_an_option_with_a_dash(tmp_path)
    check_the_command_line_reference_shows_option_names_as_typed(tmp_path)
    check_the_plugin_reference_tables_have_whole_rows(tmp_path)
    check_reference_signatures_show_public_paths_only(tmp_path)
