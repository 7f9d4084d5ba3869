"""Images that carry only their job: the size printer on a real docker-archive, and the
process-fov target's stage (built from the base image, without what only the merge needs)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import tarfile

import tomllib

from tests.support import REPO_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "containers" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_compressed_layers_of_a_docker_archive(tmp_path):
    layers = {"a/layer.tar": os.urandom(200_000), "b/layer.tar": b"\0" * 1_000_000}
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in layers.items():
            _add(tar, name, data)
        _add(tar, "manifest.json", json.dumps([{"Layers": list(layers)}]).encode())
    sizes = _load("image_sizes").compressed_layers(archive)
    assert [raw for raw, _ in sizes] == [200_000, 1_000_000]
    random, zeros = (c for _, c in sizes)
    assert 199_000 < random < 200_000 + 1_000  # random bytes do not compress
    assert zeros < 10_000  # a layer of zeros compresses to almost nothing


def _stage(text: str, name: str) -> str:
    start = re.search(rf"^FROM \S+ AS {name}$", text, re.MULTILINE)
    end = re.search(r"^FROM ", text[start.end():], re.MULTILINE)
    return text[start.start(): start.end() + (end.start() if end else len(text))]


def _branch(script: str, target: str) -> str:
    """The ``case`` branch of workers/docker/build_venv.sh for ``target``."""
    start = re.search(rf"^{re.escape(target)}\)$", script, re.MULTILINE)
    return script[start.end(): script.index("\n    ;;", start.end())]


def test_one_builder_makes_both_venvs_and_each_image_copies_only_its_own():
    text = (REPO_ROOT / "workers" / "Dockerfile").read_text()
    for target in ("process-fov", "merge-batch-job"):
        final = _stage(text, target)
        assert final.startswith(f"FROM runtime AS {target}")  # user, environment: shared, cached
        copies = re.findall(r"^COPY .*$", final, re.MULTILINE)
        assert copies == [f"COPY --from=venv-{target} /opt/venv/ /opt/venv/"], copies
        assert final.rstrip().endswith(copies[0])  # the big tree is the last layer (vfs builds)
        assert re.search(rf"^RUN build_venv.sh {target}$", _stage(text, f"venv-{target}"), re.MULTILINE)
    assert "RUN build_venv.sh deps" in _stage(text, "venv")
    assert "pip install" not in text.split("AS venv", 1)[1]  # one script installs every venv


def test_process_fov_carries_neither_the_merge_libraries_nor_the_launcher():
    script = (REPO_ROOT / "workers" / "docker" / "build_venv.sh").read_text()
    trimmed = _branch(script, "process-fov")
    for package in ("pyarrow", "matplotlib", "isal"):
        assert re.search(rf"uninstall --yes(?:[^\n]|\\\n)*\b{package}\b", trimmed), package
    # the package cut to what the entry point imports (tests/unit/test_layers.py: no launcher,
    # demo or merge in that closure); the entry module is the console script's
    scripts = tomllib.loads((REPO_ROOT / "workers" / "pyproject.toml").read_text())["project"]["scripts"]
    assert f"only_the_closure_of {scripts['process-fov'].split(':')[0]}\n" in trimmed
    assert 'uninstall --yes setuptools pip' in trimmed
    merge = _branch(script, "merge-batch-job")
    assert f"only_the_closure_of {scripts['merge-batch-job'].split(':')[0]}\n" in merge
    assert 'closure.py prune "$(site)/starfish_batch"' in script
    assert re.search(r"uninstall --yes starfish scikit-image", merge)
    deps = _branch(script, "deps")
    assert "-name tests" in deps and "strip --strip-unneeded" in deps
