"""The docs stay true to the tree: the README is a short door, every relative link lands on a
file (and heading) that exists, and every module, path and name the docs give for the code
exists in it.

What counts as a reference to the code (anything else in backticks is prose, a flag or data):
- ``starfish_batch.a.b[.name]`` anywhere, and ``starfish_batch.a.b:name`` (an entry point):
  the longest prefix that is a module or package of workers/src must exist, and the next name,
  if any, must be defined (or imported) at the top level of that module;
- in docs/design.md and docs/development.md, a short dotted name in backticks whose first part
  is a module or package of starfish_batch (``storage.replace_if``, ``runs.new_run``,
  ``batch.BatchExecutor.submit``): resolved the same way, under starfish_batch or one of its
  packages; a name ending in a file extension (``manifest.json``) is a file, not a module;
- a path in backticks or in a link under ``workers/``, ``scripts/``, ``tests/``, ``examples/``,
  ``docs/`` or ``starfish_batch/``: it must exist (placeholders such as ``<fov>`` and globs are
  not checked).
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from starfish_batch.launcher.cli import parse_args
from tests.support import REPO_ROOT

SRC = REPO_ROOT / "workers" / "src"
PACKAGE = SRC / "starfish_batch"
README = REPO_ROOT / "README.md"
DOCS = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Pages that name modules by their short names (relative to starfish_batch or one of its packages).
SHORT_NAMES_IN = {"design.md", "development.md"}
FILE_SUFFIXES = {"json", "py", "nc", "png", "html", "csv", "gz", "parquet", "h5ad", "zarr", "log",
                 "lock", "tf", "md", "txt", "toml", "yaml", "yml", "sh", "cfg"}
PATH_ROOTS = ("workers/", "scripts/", "tests/", "examples/", "docs/", "starfish_batch/")

CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FULL_NAME = re.compile(r"\bstarfish_batch(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_]\w*)?")
SHORT_NAME = re.compile(r"^[a-z_]\w*(?:\.[A-Za-z_]\w*)+$")


def _prose(text: str) -> str:
    """The page without its fenced blocks (shell sessions, sample output, HCL)."""
    return FENCE.sub("", text)


def _module_file(parts: list[str]) -> Path | None:
    """The file of module ``starfish_batch.<parts>`` (a module or a package), or None."""
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    """Names a module defines or imports at its top level, and its submodules if a package."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):  # TYPE_CHECKING / optional imports
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names.update((a.asname or a.name).split(".")[0] for a in inner.names)
    if path.name == "__init__.py":
        names.update(p.stem if p.suffix == ".py" else p.name for p in path.parent.iterdir()
                     if (p.suffix == ".py" or (p / "__init__.py").is_file()) and p.stem != "__init__")
    return frozenset(names)


def resolves(parts: list[str]) -> bool:
    """``starfish_batch.<parts>``: the longest module prefix exists, the next name is defined in it."""
    for cut in range(len(parts), -1, -1):
        module = _module_file(parts[:cut])
        if module is not None:
            rest = parts[cut:]
            return not rest or rest[0] in _top_level_names(module)
    return False


@cache
def _packages() -> list[list[str]]:
    """starfish_batch and each of its subpackages, as module parts."""
    return [list(p.parent.relative_to(PACKAGE).parts) for p in sorted(PACKAGE.rglob("__init__.py"))]


@cache
def _module_names() -> frozenset[str]:
    return frozenset(p.stem if p.name != "__init__.py" else p.parent.name
                     for p in PACKAGE.rglob("*.py")) - {"__init__"}


def code_references(name: str, text: str) -> list[str]:
    """The module names and paths a page gives for the code (see the module docstring)."""
    refs = [m.group(0) for m in FULL_NAME.finditer(text)]
    spans = [m.group(1).strip() for m in CODE_SPAN.finditer(_prose(text))]
    if name in SHORT_NAMES_IN:
        for span in spans:
            if (SHORT_NAME.match(span) and span.split(".")[0] in _module_names()
                    and span.rsplit(".", 1)[-1] not in FILE_SUFFIXES and not span.startswith("starfish_batch")):
                refs.append(span)
    targets = spans + [m.group(1) for m in LINK.finditer(CODE_SPAN.sub("", _prose(text)))]
    refs += [t for t in targets if t.startswith(PATH_ROOTS) and not re.search(r"[<>*{}\s$]|\.\.\.", t)]
    return refs


def exists(ref: str) -> bool:
    if ref.startswith(PATH_ROOTS):
        path = ref.split("#", 1)[0].rstrip("/")
        root = SRC if path.startswith("starfish_batch/") else REPO_ROOT
        return (root / path).exists()
    dotted = ref.replace(":", ".")
    if dotted.startswith("starfish_batch."):
        return resolves(dotted.split(".")[1:])
    return any(resolves(package + dotted.split(".")) for package in _packages())


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_module_and_path_the_docs_name_exists(page):
    text = page.read_text(encoding="utf-8")
    refs = code_references(page.name, text)
    missing = sorted({ref for ref in refs if not exists(ref)})
    assert not missing, f"{page.relative_to(REPO_ROOT)} names code that does not exist: {missing}"


def test_design_md_names_modules():
    """The rule above has something to check: design.md names its modules in both spellings."""
    refs = code_references("design.md", (REPO_ROOT / "docs" / "design.md").read_text())
    assert sum(r.startswith("starfish_batch.") for r in refs) >= 20
    assert sum(not r.startswith(("starfish_batch", *PATH_ROOTS)) for r in refs) >= 10


def test_the_reference_rule_catches_a_stale_name():
    """The checker refuses what a stale page would say, and accepts what the tree holds."""
    assert exists("starfish_batch.merge.job:main") and exists("starfish_batch.launcher.cli")
    assert exists("runs.new_run") and exists("storage.replace_if") and exists("batch.BatchExecutor")
    assert exists("workers/src/starfish_batch/merge/") and exists("starfish_batch/launcher/pricing/")
    for stale in ["starfish_batch.launcher.executors.batch.NoSuchExecutor", "starfish_batch.merge.nosuchmodule",
                  "runs.no_such_function", "workers/src/starfish_batch/nosuch.py"]:
        assert not exists(stale), stale
    page = "`launcher.claim.RunClaim` and `manifest.json`, `process_fov.vcpus`"
    assert code_references("design.md", page) == ["launcher.claim.RunClaim", "process_fov.vcpus"]
    assert code_references("aws.md", page) == []  # short names only where a page means modules


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", _prose(page.read_text(encoding="utf-8")), re.M)}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(CODE_SPAN.sub("", _prose(page.read_text(encoding="utf-8")))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_lands(page):
    assert not broken_links(page), f"{page.relative_to(REPO_ROOT)}: links to nothing: {broken_links(page)}"


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md) [ok](there.md#a-heading) [web](https://example.invalid/x)\n"
                    "[gone](gone.md) [no heading](there.md#nothing) `[code](not-a-link)`\n")
    assert broken_links(page) == ["gone.md", "there.md#nothing"]


def test_the_readme_is_a_short_door():
    """At most ~250 lines, the test command CI reads stated, and a link to every page of docs/."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, f"README.md has {len(text.splitlines())} lines"
    assert re.search(r"^make test\b", text, re.M), "README.md does not show `make test`"
    linked = set(LINK.findall(text))
    for page in sorted((REPO_ROOT / "docs").glob("*.md")):
        assert any(t.split("#")[0] == f"docs/{page.name}" for t in linked), f"README.md links no docs/{page.name}"


def cut_tables(text: str) -> list[int]:
    """Line numbers of table rows that follow prose directly: a table cut by a paragraph, whose
    rows after the paragraph render as text."""
    lines = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text).splitlines()
    cut = []
    for i, line in enumerate(lines):
        if line.startswith("|") and i and lines[i - 1].strip() and not lines[i - 1].startswith("|"):
            cut.append(i + 1)
    return cut


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_no_table_is_cut_by_a_paragraph(page):
    assert not cut_tables(page.read_text(encoding="utf-8")), \
        f"{page.relative_to(REPO_ROOT)}: table rows after prose at lines {cut_tables(page.read_text())}"


def test_a_cut_table_is_found():
    page = "| a | b |\n|---|---|\n| 1 | 2 |\nA paragraph in the middle.\n| 3 | 4 |\n\n| c |\n|---|\n"
    assert cut_tables(page) == [5]


SHELL_BLOCK = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)


def shell_commands(text: str) -> list[str]:
    """The commands of a page's sh/bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                commands.append(line)
    return commands


def _make_names() -> tuple[set[str], set[str]]:
    """The targets and the variables the Makefile (and what it includes) knows."""
    text = "\n".join(p.read_text() for p in [REPO_ROOT / "Makefile", *sorted((REPO_ROOT / "mk").glob("*.mk"))])
    targets = set(re.findall(r"^([a-z0-9][a-z0-9-]*):", text, re.M))
    variables = set(re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", text)) | set(re.findall(r"^([A-Z_]+)\s*\??=", text, re.M))
    return targets, variables


def bad_make_commands(commands: list[str]) -> list[str]:
    targets, variables = _make_names()
    bad = []
    for command in commands:
        for match in re.finditer(r"(?:^|&&\s*|;\s*)make\s+(.*?)(?=&&|;|\||$)", command):
            optional_parts_kept = match.group(1).replace("[", "").replace("]", "")
            words = [w for w in shlex.split(optional_parts_kept) if w != "-C" and not w.startswith("../")]
            for word in words:
                name = word.split("=", 1)[0]
                if "=" in word and name not in variables or "=" not in word and word not in targets:
                    bad.append(f"{command}: {word}")
    return bad


def bad_launcher_commands(commands: list[str]) -> list[str]:
    """Launcher command lines the launcher's own parser refuses (``[...]`` optional parts kept)."""
    bad = []
    for command in commands:
        words = shlex.split(command.replace("[", "").replace("]", ""))
        at = [i for i, w in enumerate(words) if w.endswith(("starfish_workflow.py", "starfish-workflow"))]
        if not at:
            continue
        argv = words[at[0] + 1:]
        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                parse_args(argv)
        except SystemExit:
            bad.append(f"{command}: {err.getvalue().strip().splitlines()[-1]}")
    return bad


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_make_and_launcher_command_shown_is_accepted(page):
    """Each `make` target and variable exists, and each launcher command line parses."""
    commands = shell_commands(page.read_text(encoding="utf-8"))
    assert not bad_make_commands(commands), bad_make_commands(commands)
    assert not bad_launcher_commands(commands), bad_launcher_commands(commands)


def test_a_stale_command_is_found():
    page = ("```sh\nmake run NO_SUCH_VAR=1\nmake no-such-target\nmake run EXPERIMENT=e.json  # fine\n"
            ".venv/bin/python scripts/starfish_workflow.py --no-such-flag \\\n    --results-url r\n"
            ".venv/bin/python scripts/starfish_workflow.py status RUN_ID --results-url r\n```\n")
    commands = shell_commands(page)
    assert len(commands) == 5
    assert [b.rsplit(": ", 1)[-1] for b in bad_make_commands(commands)] == ["NO_SUCH_VAR=1", "no-such-target"]
    assert len(bad_launcher_commands(commands)) == 1 and "--no-such-flag" in bad_launcher_commands(commands)[0]
