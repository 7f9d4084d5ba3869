#!/usr/bin/env python3
"""The modules of starfish_batch that an entry point can import, read from the source (no import
runs), and the pruning of an installed package down to them.

    closure.py list  PACKAGE_DIR MODULE...    print the closure's files, one per line
    closure.py prune PACKAGE_DIR MODULE...    delete every other module of the package

Every ``import`` and ``from ... import`` counts, at a file's top or inside a function: a module
that may be imported late is in the closure all the same. ``from pkg import name`` counts
``pkg.name`` when that is a module. A package's ``__init__`` is in the closure with any of its
modules, as Python imports it first. The image build (build_venv.sh) prunes each worker image to
its entry point's closure; tests/unit/test_layers.py holds the same closures to the layering
rules (no image reaches ``launcher/`` or ``demo/``; ``core/`` imports only itself).

Standard library only: it runs in the image's builder stage before anything is importable.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package under ``package_dir`` (a folder named as the package)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that the module ``name`` (at ``path``) imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    wanted: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            wanted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            wanted += [module] + [f"{module}.{alias.name}" for alias in node.names]
    found = set()
    for want in wanted:
        while want and want not in known:  # "pkg.mod.function" is the module "pkg.mod"
            want = want.rpartition(".")[0]
        if want:
            found.add(want)
    return found


def closure(package_dir: Path, entries: list[str]) -> set[str]:
    """The entry modules and every module of the package they import, transitively (with the
    ``__init__`` of each package on the way)."""
    known = modules(package_dir)
    missing = [entry for entry in entries if entry not in known]
    if missing:
        raise SystemExit(f"closure.py: no module {', '.join(missing)} under {package_dir}")
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [p for p in parents if p in known] + sorted(imported(name, known[name], known))
    return seen


def prune(package_dir: Path, entries: list[str]) -> list[Path]:
    """Delete the package's modules outside the closure (and folders left with no module)."""
    keep = closure(package_dir, entries)
    removed = [path for name, path in modules(package_dir).items() if name not in keep]
    for path in removed:
        path.unlink()
    for folder in sorted((p for p in package_dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.rglob("*.py")):
            for leftover in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
                leftover.rmdir() if leftover.is_dir() else leftover.unlink()
            folder.rmdir()
    return removed


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("list", "prune"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    package_dir, entries = Path(argv[1]), argv[2:]
    if argv[0] == "list":
        known = modules(package_dir)
        print("\n".join(str(known[name]) for name in sorted(closure(package_dir, entries))))
    else:
        removed = prune(package_dir, entries)
        print(f"closure.py: kept the closure of {' '.join(entries)}; removed {len(removed)} modules: "
              f"{' '.join(sorted(str(p.relative_to(package_dir)) for p in removed))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
