"""Images that carry only their job: the size printer on a real docker-archive, and the
process-fov target's stage (built from the base image, without what only the merge needs)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import tarfile

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


def test_process_fov_carries_neither_the_merge_libraries_nor_the_launcher():
    text = (REPO_ROOT / "workers" / "Dockerfile").read_text()
    final = _stage(text, "process-fov")
    assert final.startswith("FROM ${BASE_IMAGE} AS process-fov")  # not FROM runtime: no merge venv
    assert "--from=venv-process-fov" in final and "--from=venv " not in final
    trimmed = _stage(text, "venv-process-fov")
    for package in ("pyarrow", "matplotlib", "isal"):
        assert re.search(rf"pip uninstall[^&]*\b{package}\b", trimmed), package
    for module in ("launcher", "demo", "merge", "report"):
        assert f'"$site/starfish_batch/{module}"' in trimmed, module
    assert "uninstall --yes --no-input --disable-pip-version-check pip" in trimmed
    merge = _stage(text, "runtime")
    assert '"$site/starfish_batch/launcher" "$site/starfish_batch/demo"' in merge
