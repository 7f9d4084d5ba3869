"""The version is written once (starfish_batch.__version__): the package metadata, the CHANGELOG's
newest release and every `?ref=` the docs and examples pin follow it."""

from __future__ import annotations

import re

import tomllib

import starfish_batch
from tests.support import REPO_ROOT

VERSION = starfish_batch.__version__


def test_pyproject_reads_the_version_from_the_package():
    project = tomllib.loads((REPO_ROOT / "workers" / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "starfish_batch.__version__"}


def test_changelog_has_a_tag_ready_entry_for_the_version():
    headings = re.findall(r"^## (\S+)", (REPO_ROOT / "CHANGELOG.md").read_text(), re.M)
    released = [h for h in headings if h != "Unreleased"]
    assert released and released[0] == VERSION, f"CHANGELOG's newest release is {released[:1]}, the package {VERSION}"
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(VERSION)} - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_every_pinned_ref_is_this_version():
    texts = {p: p.read_text() for p in [REPO_ROOT / "README.md", *REPO_ROOT.glob("examples/*/*.tf"),
                                          *REPO_ROOT.glob("docs/*.md")]}
    refs = {(p.relative_to(REPO_ROOT).as_posix(), ref)
            for p, t in texts.items() for ref in re.findall(r"\?ref=([\w.-]+)", t)}
    assert refs, "the docs pin no ?ref= (docs/terraform.md's child-module example)"
    assert {ref for _, ref in refs} == {f"v{VERSION}"}, refs
