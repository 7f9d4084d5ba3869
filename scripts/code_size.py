#!/usr/bin/env python3
"""The largest modules, classes and functions of the package, and the ones over the limits.

A module of one idea stays under ~400 lines, a class under ~250, a function under ~80
(issue 28). ``make lint`` prints the largest; ``--check`` (and tests/unit/test_code_size.py)
fails when anything not in ``EXCEPTIONS`` passes a limit, so what is not yet split cannot
grow and nothing new joins it.

    python scripts/code_size.py [--top N] [--check] [ROOT]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "workers" / "src" / "starfish_batch"
LIMITS = {"module": 400, "class": 250, "function": 80}

EXCEPTIONS: dict[str, int] = {
    # Not yet split (issue 28, item 2). Each may shrink, none may grow past the size given here
    # (today's size and a few lines of slack for changes in flight); split one, then delete its line.
}
"""``path`` (a module) or ``path::Qualified.name`` (a class or function) -> its allowed lines."""


class Size(NamedTuple):
    kind: str  # "module", "class" or "function"
    name: str  # "path" or "path::Qualified.name", the path relative to the package
    lines: int

    @property
    def limit(self) -> int:
        return EXCEPTIONS.get(self.name, LIMITS[self.kind])


def _defs(path: str, body: list[ast.stmt], prefix: str = ""):
    for node in body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            qualified = f"{prefix}{node.name}"
            yield Size(kind, f"{path}::{qualified}", node.end_lineno - node.lineno + 1)
            yield from _defs(path, node.body, f"{qualified}.")


def sizes(root: Path = PACKAGE) -> list[Size]:
    """Every module, class and function (nested ones too) under ``root``, with its lines."""
    found = []
    for file in sorted(root.rglob("*.py")):
        path = file.relative_to(root).as_posix()
        text = file.read_text(encoding="utf-8")
        found.append(Size("module", path, len(text.splitlines())))
        found.extend(_defs(path, ast.parse(text, filename=str(file)).body))
    return found


def over_limits(found: list[Size]) -> list[Size]:
    return [s for s in found if s.lines > s.limit]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=PACKAGE)
    parser.add_argument("--top", type=int, default=5, help="how many of each kind to print (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when something passes its limit")
    args = parser.parse_args(argv)
    found = sizes(args.root)
    for kind, limit in LIMITS.items():
        largest = sorted((s for s in found if s.kind == kind), key=lambda s: -s.lines)[:args.top]
        print(f"largest {kind}s (limit {limit} lines):")
        for s in largest:
            allowed = f"  (exception: at most {s.limit})" if s.name in EXCEPTIONS else ""
            print(f"  {s.lines:5d}  {s.name}{allowed}")
    over = over_limits(found)
    for s in over:
        print(f"code_size: {s.name}: {s.lines} lines, over the {s.kind} limit of {s.limit}: split it",
              file=sys.stderr)
    return 1 if over and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
