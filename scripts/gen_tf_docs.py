#!/usr/bin/env python3
"""Write docs/terraform.md's Inputs and Outputs tables from the module's *.tf files.

    python scripts/gen_tf_docs.py            # rewrite the tables in docs/terraform.md (make docs)
    python scripts/gen_tf_docs.py --check    # exit 1 if they are stale (make lint, make test)

The tables sit between ``<!-- BEGIN_TF_DOCS -->`` and ``<!-- END_TF_DOCS -->`` in docs/terraform.md.
Every ``variable`` and ``output`` block of every *.tf at the module's root is listed, whichever
file holds it.
They have terraform-docs' columns (no terraform-docs needed: it is not on PyPI). The files are
read as `terraform fmt` writes them: each ``variable``/``output`` block starts at column 0 and
ends with a ``}`` at column 0, its attributes indented by two spaces.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"
BLOCK = re.compile(r'^(variable|output) "([^"]+)" \{\n(.*?)^\}', re.M | re.S)
ATTRIBUTE = re.compile(r"^  ([a-z_]+)\s*=\s*(.*)$")
OPENERS, CLOSERS = "([{", ")]}"


class DocsError(Exception):
    pass


class Block(NamedTuple):
    name: str
    attributes: dict[str, str]  # attribute -> its expression, as written


def _depth(text: str) -> int:
    """Brackets opened and not closed in ``text``, outside strings."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
            elif ch != "\\":
                escaped = False
        elif ch == '"':
            in_string = True
        elif ch in OPENERS:
            depth += 1
        elif ch in CLOSERS:
            depth -= 1
    return depth


def _attributes(body: str) -> dict[str, str]:
    """The block's own attributes (two-space indent), multi-line values and heredocs joined."""
    lines = body.splitlines()
    found: dict[str, str] = {}
    i = 0
    while i < len(lines):
        match = ATTRIBUTE.match(lines[i])
        i += 1
        if not match:
            continue
        name, value = match.groups()
        heredoc = re.match(r"<<-?(\w+)$", value)
        if heredoc:
            text = []
            while i < len(lines) and lines[i].strip() != heredoc.group(1):
                text.append(lines[i].strip())
                i += 1
            i += 1
            found[name] = json.dumps(" ".join(t for t in text if t))
            continue
        while _depth(value) > 0 and i < len(lines):
            value += "\n" + lines[i]
            i += 1
        found[name] = value.strip()
    return found


def blocks(path: Path, kind: str) -> list[Block]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DocsError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [Block(name, _attributes(body)) for k, name, body in BLOCK.findall(text) if k == kind]


def _string(expr: str | None, where: str) -> str:
    if expr is None:
        raise DocsError(f"{where} has no description")
    try:
        return json.loads(expr)
    except json.JSONDecodeError as exc:
        raise DocsError(f"{where}: the description is not a plain string ({expr[:40]}...)") from exc


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _code(expr: str) -> str:
    """An expression as one line of code: object types are named, not spelled out."""
    one_line = " ".join(expr.split())
    if one_line.startswith("object("):
        one_line = "object"
    escaped = one_line.replace("|", "\\|")
    return f"`{escaped}`"


def inputs_table(variables: list[Block], where: str) -> list[str]:
    rows = ["| Name | Description | Type | Default | Required |",
            "|------|-------------|------|---------|:--------:|"]
    for v in sorted(variables, key=lambda b: b.name):
        description = _string(v.attributes.get("description"), f"{where}: variable {v.name}")
        kind = _code(v.attributes.get("type", "any"))
        default = v.attributes.get("default")
        rows.append(f"| `{v.name}` | {_cell(description)} | {kind} | "
                    f"{'n/a' if default is None else _code(default)} | {'yes' if default is None else 'no'} |")
    return rows


def outputs_table(outputs: list[Block], where: str) -> list[str]:
    rows = ["| Name | Description |", "|------|-------------|"]
    for o in sorted(outputs, key=lambda b: b.name):
        description = _string(o.attributes.get("description"), f"{where}: output {o.name}")
        rows.append(f"| `{o.name}` | {_cell(description)} |")
    return rows


def render(root: Path) -> str:
    """The text between the markers: both tables, from every *.tf of the module's root."""
    variables, outputs = [], []
    for tf in sorted(root.glob("*.tf")):
        variables += blocks(tf, "variable")
        outputs += blocks(tf, "output")
    if not variables or not outputs:
        raise DocsError(f"no variable or no output block in {root}/*.tf")
    return "\n".join([
        "", "## Inputs", "",
        *inputs_table(variables, str(root)),
        "", "## Outputs", "",
        *outputs_table(outputs, str(root)),
        "",
    ])


def updated(doc_text: str, tables: str, doc: Path) -> str:
    start, end = doc_text.find(BEGIN), doc_text.find(END)
    if start < 0 or end < start:
        raise DocsError(f"{doc} has no {BEGIN} ... {END} section for the tables")
    return doc_text[:start + len(BEGIN)] + "\n" + tables + "\n" + doc_text[end:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=REPO_ROOT, help="the module's folder (its *.tf files)")
    p.add_argument("--doc", type=Path, help="the page holding the tables (default: ROOT/docs/terraform.md)")
    p.add_argument("--check", action="store_true", help="exit 1 if the page's tables are stale")
    args = p.parse_args(argv)
    doc = args.doc or args.root / "docs" / "terraform.md"
    try:
        text = doc.read_text(encoding="utf-8")
        new = updated(text, render(args.root), doc)
    except OSError as exc:
        print(f"gen_tf_docs: error: cannot read {doc}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except DocsError as exc:
        print(f"gen_tf_docs: error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if new != text:
            print(f"gen_tf_docs: {doc}'s Inputs/Outputs tables do not match the module's "
                  f"*.tf files: run `make docs` and commit {doc.name}", file=sys.stderr)
            return 1
        return 0
    if new != text:
        doc.write_text(new, encoding="utf-8")
        print(f"gen_tf_docs: wrote the tables in {doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
