"""`make run EXECUTOR=batch DEPLOYMENT=NAME`: the launcher reads that deployment's SSM parameter."""

from __future__ import annotations

import shlex

from tests.support.shell import make_dry_run, makefile_tree


def test_make_run_passes_the_deployment(tmp_path):
    tree = makefile_tree(tmp_path)
    command = make_dry_run(tree, "run", "EXECUTOR=batch", "DEPLOYMENT=starfish-fargate",
                       "EXPERIMENT=s3://lab/exp/experiment.json", "RESULTS=s3://bucket/runs")
    (line,) = [ln for ln in command.splitlines() if "starfish_workflow.py" in ln]
    argv = shlex.split(line.replace("\\\n", " "))
    at = argv.index("--deployment")
    assert argv[at + 1] == "starfish-fargate" and argv[argv.index("--executor") + 1] == "batch"
    plain = make_dry_run(tree, "run", "EXPERIMENT=s3://lab/exp/experiment.json")
    assert "--deployment" not in plain
