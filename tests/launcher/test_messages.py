"""Errors that name the cause in a scientist's words, and slow steps that say what they wait for."""

from __future__ import annotations

import socket

from tests.support.workflow import ISS_RECIPE, launch, write_experiment


def test_an_unreachable_experiment_host_says_what_it_waits_for_then_why_it_stopped(tmp_path):
    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/lab/experiment.json"
    done = launch("--experiment-url", url, "--recipe", ISS_RECIPE, "--results-url", tmp_path / "results")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    waiting = [line for line in lines if line.startswith("starfish_workflow.py: waiting for ")]
    assert waiting and all(f"127.0.0.1:{port}/lab/experiment.json (Connection refused)" in w for w in waiting)
    assert lines[-1] == (f"starfish_workflow.py: error: cannot open experiment {url}: "
                         f"cannot reach 127.0.0.1:{port}: Connection refused")
    assert not (tmp_path / "results").exists()


def test_a_folder_given_for_the_experiment_points_at_the_file_inside(tmp_path):
    experiment = write_experiment(tmp_path / "exp")
    done = launch("--experiment-url", experiment.parent, "--recipe", ISS_RECIPE, "--results-url", tmp_path / "r")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"starfish_workflow.py: error: cannot open experiment {experiment.parent}: it is a folder, not an "
        f"experiment.json; did you mean {experiment}?")
