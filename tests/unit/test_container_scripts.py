"""The container helper scripts that need no container engine (always run, fast)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import tomllib
from packaging.requirements import Requirement

from tests.support import load_script
from tests.support.containers import REPO_ROOT, SCRIPTS


def _load(name):
    return load_script(SCRIPTS / f"{name}.py")


OUTPUTS = {
    "region": {"value": "eu-west-1", "type": "string", "sensitive": False},
    "process_fov_repository_url": {"value": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-process-fov"},
    "merge_repository_url": {"value": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-merge"},
}


def test_push_dry_run_tags_and_pushes_both(tmp_path):
    tf = tmp_path / "outputs.json"
    tf.write_text(json.dumps(OUTPUTS))
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "push_images.py"), "--engine", "podman", "--tag", "v7",
         "--tf-outputs", str(tf), "--dry-run"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-process-fov:v7",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-merge:v7",
    ]
    assert "+ podman login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" in proc.stderr
    assert "+ podman push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-merge:v7" in proc.stderr
    assert "starfish-batch-process-fov:v7 123456789012" in proc.stderr  # local name -> repository


def test_push_names_missing_outputs(tmp_path):
    tf = tmp_path / "outputs.json"
    tf.write_text(json.dumps({"region": "us-east-1"}))
    push = _load("push_images")
    assert push.main(["--tf-outputs", str(tf), "--dry-run"]) == 1


def test_push_ecr_password_with_boto3(monkeypatch):
    """Without the aws CLI, the token comes from boto3 (here moto's fake ECR)."""
    from moto import mock_aws  # lazy: moto ~0.6 s

    push = _load("push_images")
    monkeypatch.setattr(push.shutil, "which", lambda name: None)
    with mock_aws():
        assert push.ecr_password("us-east-1")


def test_gen_constraints_matches_committed_file():
    gen = _load("gen_constraints")
    pins = gen.closure(gen.ROOT_DIST)
    committed = (REPO_ROOT / "workers" / "constraints.txt").read_text().splitlines()
    for pin in pins.values():
        assert pin in committed, f"{pin} not in workers/constraints.txt: run `make constraints`"


def test_every_test_tool_is_pinned():
    """A new release of pytest, moto or ruff must not change `make test` on a fresh clone."""
    project = tomllib.loads((REPO_ROOT / "workers" / "pyproject.toml").read_text())["project"]
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (REPO_ROOT / "workers" / "constraints-test.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for line in project["optional-dependencies"]["test"]:
        name = Requirement(line).name.lower().replace("_", "-")
        assert name in pinned, f"test tool {name} has no pin in workers/constraints-test.txt: run `make constraints`"
    make = (REPO_ROOT / "Makefile").read_text()
    assert "-c workers/constraints-test.txt -e 'workers[test]'" in make


@pytest.mark.parametrize(
    "script", sorted(p.name for p in SCRIPTS.glob("*.sh")), ids=lambda name: name.removesuffix(".sh")
)
def test_shell_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(SCRIPTS / script)], check=False).returncode == 0


def _apt_mirror(etc, suite: str = "bookworm") -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / "apt_mirror.sh"), suite], capture_output=True, text=True, check=False,
                          env={**os.environ, "APT_ETC": str(etc)})


def test_apt_mirror_reads_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://sec.example/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib\n")
    done = _apt_mirror(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "http://mirror.example/debian"
    assert _apt_mirror(tmp_path, "trixie").returncode == 1


def test_apt_mirror_reads_deb822_sources_and_skips_disabled_ones(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "# a comment between paragraphs\n\n"
        "Types: deb deb-src\nURIs: https://on.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n")
    done = _apt_mirror(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://on.example/debian"


def test_apt_mirror_without_a_source_names_the_suite_and_the_folder(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    done = _apt_mirror(tmp_path, "bookworm")
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.strip() == f"apt_mirror.sh: no enabled 'deb' source for suite bookworm in {tmp_path}"


def test_podman_env_writes_configs(tmp_path):
    proc = subprocess.run(
        [str(SCRIPTS / "podman_env.sh"), str(tmp_path / "state")], capture_output=True, text=True, check=True
    )
    conf = (tmp_path / "state" / "containers.conf").read_text()
    storage = (tmp_path / "state" / "storage.conf").read_text()
    assert 'runtime = "runc"' in conf and 'cgroup_manager = "cgroupfs"' in conf
    assert '"nofile=1024:1024"' in conf
    assert 'driver = "vfs"' in storage and str(tmp_path / "state" / "storage") in storage
    assert f"export DOCKER_HOST='unix://{tmp_path / 'state'}/podman.sock'" in proc.stdout


def _push_dry_run(tmp_path, outputs: dict, *extra: str) -> subprocess.CompletedProcess:
    tf = tmp_path / "outputs.json"
    tf.write_text(json.dumps(outputs))
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "push_images.py"), "--engine", "podman", "--tf-outputs", str(tf),
         "--dry-run", *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_push_reads_launcher_config_alone(tmp_path):
    """A stack that re-exports only the module's launcher_config can push."""
    config = {k: v["value"] for k, v in OUTPUTS.items()}
    proc = _push_dry_run(tmp_path, {"launcher_config": {"value": config}}, "--tag", "v8")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-process-fov:v8",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sfb-merge:v8",
    ]


def test_push_without_repositories_goes_to_the_given_image_uris(tmp_path):
    """create_repositories = false: each image goes where its job definition runs it; the ECR
    registry is logged in to (in its own region), another registry is not."""
    config = {
        "region": "eu-west-1",
        "process_fov_repository_url": None,
        "merge_repository_url": None,
        "process_fov_image": "210987654321.dkr.ecr.us-west-2.amazonaws.com/team/process-fov:2.0",
        "merge_image": "registry.example.org/team/merge-batch-job:2.0",
    }
    proc = _push_dry_run(tmp_path, {"launcher_config": {"value": config}})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [config["process_fov_image"], config["merge_image"]]
    assert "+ podman login --username AWS --password-stdin 210987654321.dkr.ecr.us-west-2.amazonaws.com" in proc.stderr
    assert "login --username AWS --password-stdin registry.example.org" not in proc.stderr
    assert f"+ podman tag starfish-batch-merge-batch-job:latest {config['merge_image']}" in proc.stderr
    assert f"+ podman push {config['merge_image']}" in proc.stderr


# apt as this machine has it, for one thing only: it refuses a second caller while one holds its
# lock ("Could not get lock"), as the real apt-get does. dpkg-query says what it installed.
STUB_APT = """#!/bin/bash
stub=$(dirname "$0")
if [[ $* == *install* ]]; then
    if ! mkdir "$stub/apt-running" 2>/dev/null; then
        echo "E: Could not get lock /var/lib/apt/lists/lock" >&2
        exit 100
    fi
    sleep 1
    for package in "${@: -1}"; do touch "$stub/installed-$package"; done
    printf '#!/bin/sh\\necho Chromium 120.0\\n' > "$stub/chromium"; chmod +x "$stub/chromium"
    echo install >> "$stub/calls"
    rmdir "$stub/apt-running"
fi
"""
STUB_DPKG_QUERY = """#!/bin/bash
[[ -e $(dirname "$0")/installed-${@: -1} ]] && echo "install ok installed"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="install_chromium.sh installs only as root")
def test_two_test_runs_at_once_install_chromium_one_after_the_other(tmp_path):
    """Two `make test` on one machine both start with install_chromium.sh: the second waits for
    the first's install and then finds chromium there, instead of failing on apt's lock."""
    stub = tmp_path / "bin"
    stub.mkdir()
    for name, text in {"apt-get": STUB_APT, "dpkg-query": STUB_DPKG_QUERY}.items():
        (stub / name).write_text(text)
        (stub / name).chmod(0o755)
    for tool in ("bash", "date", "dirname", "flock", "grep", "id", "mkdir", "rmdir", "sleep", "tail", "touch",
                 "chmod"):  # the tools the scripts use, and no chromium this machine may have
        (stub / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(stub), "STARFISH_BATCH_APT_LOCK": str(tmp_path / "apt.lock")}
    runs = [subprocess.Popen([str(REPO_ROOT / "scripts" / "ci" / "install_chromium.sh")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=60), run.stderr.read()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    assert (stub / "calls").read_text().splitlines() == ["install"]  # the second found it installed
