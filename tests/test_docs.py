"""The documentation covers the code: every public name has a reference entry, the
docstrings carry the sections the reference needs and their examples run, the README
stays short and its links lead somewhere, and CI builds the site the way the README
says."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import sockshock

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SRC = Path(sockshock.__file__).parent
DROP_IN = "sockshock.socketserver"  # CPython's docstrings, shown as written


def _public_modules() -> list[str]:
    names = ["sockshock"]
    for info in pkgutil.iter_modules([str(SRC)], prefix="sockshock."):
        if not info.name.rsplit(".", 1)[1].startswith("_"):
            names.append(info.name)
    return sorted(names)


PUBLIC = _public_modules()
PUBLIC_NAMES = sorted(
    f"{module}.{name}" for module in PUBLIC for name in importlib.import_module(module).__all__
)
# What a reference page documents: autodoc's and the Python domain's directives.
DIRECTIVE = re.compile(
    r"^\.\. (?:auto(?:class|function|exception|data)|py:(?:class|function|exception|data))::"
    r"\s+(sockshock[\w.]*)",
    re.M,
)


def documented() -> dict[str, str]:
    """Each name the reference pages document, with the page."""
    names: dict[str, str] = {}
    for page in sorted((DOCS / "reference").glob("*.md")):
        for name in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            names.setdefault(name, page.name)
    return names


def test_the_reference_documents_every_public_name() -> None:
    missing = [name for name in PUBLIC_NAMES if name not in documented()]
    assert not missing, f"public names without a reference entry in docs/reference/: {missing}"


def test_the_reference_documents_nothing_that_is_not_public() -> None:
    # the fixture's object, shown as "fixture sockshock" (docs/_ext: fixture_objects)
    private_ok = {"sockshock._pytest._fixture.SockshockFixture"}
    stale = sorted(set(documented()) - set(PUBLIC_NAMES) - private_ok)
    assert not stale, f"reference entries for names no public module exports: {stale}"


def test_a_missing_name_would_be_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above reads the pages: drop one entry and it fails."""
    page = DOCS / "reference" / "faults.md"
    text = page.read_text(encoding="utf-8").replace(
        ".. autoclass:: sockshock.faults.PartialReads", ".. (removed)"
    )
    original = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        return text if self == page else original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert "sockshock.faults.PartialReads" not in documented()


def _own_objects() -> list[tuple[str, Any]]:
    """Public functions and classes whose docstrings are sockshock's (not the drop-in
    module's, which are CPython's; not exceptions, whose one line says it all)."""
    found = []
    for qualified in PUBLIC_NAMES:
        module, _, name = qualified.rpartition(".")
        if module == DROP_IN:
            continue
        obj = getattr(importlib.import_module(module), name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found.append((qualified, obj))
    return found


OWN = _own_objects()


def _parameters(obj: Any) -> list[str]:
    """The parameters a caller passes: a class's only when it defines its own
    constructor (a request handler's is socketserver's; a Protocol has none)."""
    if inspect.isclass(obj) and (
        "__init__" not in vars(obj) or getattr(obj, "_is_protocol", False)
    ):
        return []
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in ("self", "cls")]


@pytest.mark.parametrize(("name", "obj"), OWN, ids=[name for name, _ in OWN])
def test_public_docstrings_have_the_sections_the_reference_needs(name: str, obj: Any) -> None:
    doc = inspect.getdoc(obj) or ""
    assert doc, f"{name} has no docstring"
    if inspect.isclass(obj) and "__init__" in vars(obj):
        doc = doc + "\n" + (inspect.getdoc(obj.__init__) or "")
    if _parameters(obj):
        assert re.search(r"^(Args|Attributes):$", doc, re.M), f"{name}: no Args: section"
    if inspect.isfunction(obj):
        returns = inspect.signature(obj).return_annotation
        if returns not in (None, "None", inspect.Signature.empty):
            assert re.search(r"^(Returns|Yields):$", doc, re.M), f"{name}: no Returns: section"


def _documented_methods() -> list[tuple[str, Any]]:
    """The methods the reference pages show: ``:members:`` of an ``autoclass`` (all
    the class's own public methods when it names none)."""
    found = []
    pattern = re.compile(r"^\.\. autoclass:: (sockshock\.[\w.]+)\n(?:   :members:(.*)\n)?", re.M)
    for page in sorted((DOCS / "reference").glob("*.md")):
        for qualified, listed in pattern.findall(page.read_text(encoding="utf-8")):
            module, _, name = qualified.rpartition(".")
            if module == DROP_IN or not module.startswith("sockshock") or "._" in module:
                continue
            cls = getattr(importlib.import_module(module), name)
            if not listed.strip() and f"{qualified}\n   :members:" not in page.read_text(
                encoding="utf-8"
            ):
                continue  # no :members: option: only the class is shown
            names = [n.strip() for n in listed.split(",") if n.strip()] or [
                n for n in vars(cls) if not n.startswith("_")
            ]
            for method in names:
                value = inspect.getattr_static(cls, method)
                if inspect.isfunction(value):
                    found.append((f"{qualified}.{method}", value))
    return found


METHODS = _documented_methods()


@pytest.mark.parametrize(("name", "method"), METHODS, ids=[name for name, _ in METHODS])
def test_documented_methods_have_the_sections_the_reference_needs(name: str, method: Any) -> None:
    doc = inspect.getdoc(method) or ""
    assert doc, f"{name} has no docstring"
    signature = inspect.signature(method)
    if [p for p in signature.parameters if p not in ("self", "cls")]:
        assert re.search(r"^Args:$", doc, re.M), f"{name}: no Args: section"
    if signature.return_annotation not in (None, "None", inspect.Signature.empty):
        assert re.search(r"^(Returns|Yields):$", doc, re.M), f"{name}: no Returns: section"


def test_methods_are_checked_too() -> None:
    assert "sockshock.ServerHandle.connect" in dict(METHODS)


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for qualified, obj in OWN:
        for test in finder.find(obj, qualified):
            if test.examples:
                tests.append(test)
    return tests


DOCTESTS = _doctests()


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples_run(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    output: list[str] = []
    runner.run(test, out=output.append)
    assert runner.failures == 0, "".join(output)


def test_some_docstrings_have_examples() -> None:
    assert any(t.name == "sockshock.serving" for t in DOCTESTS)


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines; keep it to 250 and move the rest to docs/"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _local_links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


PAGES = [README, *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_local_links_lead_to_files(page: Path) -> None:
    """Sphinx checks the site's links (-W); this checks them without Sphinx, and the
    README's, which the site does not include."""
    broken = []
    for target in _local_links(page):
        path = target.split("#", 1)[0]
        resolved = DOCS / path.lstrip("/") if path.startswith("/") else page.parent / path
        if not resolved.exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_ci_builds_the_site_as_the_readme_says() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (build,) = re.findall(r"^step (\.venv/bin/python -m sphinx .*)$", ci, re.M)
    assert "-W" in build.split(), "CI must build the docs with warnings as errors"
    assert build in README.read_text(encoding="utf-8"), "README's docs command differs from CI's"
    assert re.search(r"pip install .*\[[^]]*docs", ci), "CI does not install the [docs] extra"


def test_every_page_is_in_the_site() -> None:
    """Each page under docs/ is reachable from a toctree (Sphinx warns too; this
    says which page without a build)."""
    listed = set()
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for block in re.findall(
            r"```\{toctree\}\n(.*?)```", page.read_text(encoding="utf-8"), re.S
        ):
            for entry in block.splitlines():
                entry = entry.strip()
                if entry and not entry.startswith(":"):
                    base = DOCS if entry.startswith("/") else page.parent
                    listed.add((base / entry.lstrip("/")).with_suffix(".md").resolve())
    pages = {p.resolve() for p in DOCS.rglob("*.md") if "_build" not in p.parts}
    unlisted = sorted(str(p.relative_to(DOCS)) for p in pages - listed if p != DOCS / "index.md")
    assert not unlisted, f"pages in no toctree: {unlisted}"
