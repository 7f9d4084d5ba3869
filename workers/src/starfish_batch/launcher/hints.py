"""The commands the launcher suggests next (resume, a new run, a new estimate, what to do
after failed FOVs): complete, so that they work when pasted, typed the way the user started
the launcher (``make run ...`` under ``make``, else the launcher's own command line) with the
executor and flags this run used."""

from __future__ import annotations

import os
import shlex
import sys

from starfish_batch.core import printable
from starfish_batch.core.contract import LAUNCHER as PROG
from starfish_batch.core.manifest import Manifest
from starfish_batch.launcher.executors.slurm import options as slurm_options
from starfish_batch.launcher.options import Options

VIA_MAKE_VAR = "STARFISH_BATCH_VIA_MAKE"  # set by `make run`: the commands we suggest are `make run ...`
MAX_TRY_FOVS = 5
"""The failed FOVs a `--fovs` try of a fixed recipe names (the first ones; enough to see the fix work)."""


def invocation(argv0: str | None) -> str:
    """The launcher as this process was started (``python scripts/starfish_workflow.py``, or the
    ``starfish-workflow`` console script), so that a command we print runs when pasted."""
    if not argv0:
        return PROG
    if argv0.endswith(".py"):
        return f"{shlex.quote(sys.executable)} {shlex.quote(argv0)}"
    return shlex.quote(argv0)


def tf_flags(args: Options) -> str:
    """The flags that find the same Terraform outputs again."""
    if args.tf_outputs:
        return f" --tf-outputs {shlex.quote(args.tf_outputs)}"
    if args.config_parameter:
        return f" --config-parameter {shlex.quote(args.config_parameter)}"
    if args.deployment:
        return f" --deployment {shlex.quote(args.deployment)}"
    if args.tf_dir:
        return f" --tf-dir {shlex.quote(args.tf_dir)}"
    return ""


def where(args: Options, results_url: str) -> str:
    """The flags that find a run again for ``status`` and ``cancel``."""
    batch = f"{tf_flags(args)} --executor batch" if args.executor == "batch" else ""
    if args.executor == "slurm":
        batch = " --executor slurm"
    return f"--results-url {shlex.quote(results_url)}{batch}"


def _slurm_flags(args: Options) -> str:
    """The Slurm flags this run used (none outside ``run``)."""
    return slurm_options.from_args(args).flags() if args.command == "run" else ""


def _executor_words(args: Options) -> tuple[str, str]:
    """(words after the launcher, words at the end) that choose this run's executor again: the
    executor and its flags (Terraform outputs for Batch, the Slurm flags for Slurm)."""
    if args.executor == "batch":
        return " --executor batch", tf_flags(args)
    if args.executor == "slurm":
        flags = _slurm_flags(args)
        return f" --executor slurm{' ' + flags if flags else ''}", ""
    return "", ""


def via_make() -> bool:
    return os.environ.get(VIA_MAKE_VAR) == "1"


def make_command(args: Options, target: str = "run", **variables: str) -> str:
    """``make run VAR=value ...`` with the executor and its flags this run used."""
    if args.executor in ("batch", "slurm"):
        variables["EXECUTOR"] = args.executor
        flags = (tf_flags(args) if args.executor == "batch" else _slurm_flags(args)).strip()
        if flags:
            variables["RUN_ARGS"] = flags
    return f"make {target} " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())


def resume_hint(manifest: Manifest, args: Options) -> str:
    """The command that processes what is left of this run with its own recipe, then merges."""
    if via_make():
        return make_command(args, RESUME=manifest.run_id, RESULTS=manifest.results_url)
    lead, tail = _executor_words(args)
    return (f"{args.invocation}{lead} --resume {manifest.run_id} "
            f"--results-url {shlex.quote(manifest.results_url)}{tail}")


def _recipe(manifest: Manifest, args: Options) -> str:
    """The recipe file the run was started from (fixed in place), not the run's own copy."""
    return getattr(args, "recipe", None) or manifest.recipe_source or manifest.recipe_url


def new_run_hint(manifest: Manifest, args: Options, fovs: list[str] | None = None) -> str:
    """The command that runs a fixed recipe over the same experiment, as a new run (of ``fovs``
    alone, when given: a partial run that tries the fix first)."""
    recipe = _recipe(manifest, args)
    if via_make():
        extra = {"FOVS": ",".join(fovs)} if fovs else {}
        return make_command(args, EXPERIMENT=manifest.experiment_url, RECIPE=recipe,
                            RESULTS=manifest.results_url, **extra)
    lead, tail = _executor_words(args)
    only = f" --fovs {shlex.quote(','.join(fovs))}" if fovs else ""
    return (f"{args.invocation}{lead} --experiment-url {shlex.quote(manifest.experiment_url)} "
            f"--recipe {shlex.quote(recipe)} --results-url {shlex.quote(manifest.results_url)}{only}{tail}")


def estimate_hint(manifest: Manifest, args: Options) -> str:
    """The command that estimates again, as a new run, with the recipe file the user gave."""
    recipe = _recipe(manifest, args)
    if via_make():
        return make_command(args, "estimate", EXPERIMENT=manifest.experiment_url, RECIPE=recipe,
                            RESULTS=manifest.results_url, SAMPLE=str(args.sample))
    lead, tail = _executor_words(args) if args.executor == "batch" else ("", "")  # no Slurm estimate
    return (f"{args.invocation} estimate{lead} "
            f"--experiment-url {shlex.quote(manifest.experiment_url)} --recipe {shlex.quote(recipe)} "
            f"--results-url {shlex.quote(manifest.results_url)} --sample {args.sample}{tail}")


def _try_fovs(failures) -> list[str] | None:
    """The failed FOVs to try a fixed recipe on first, or None when they cannot be named in --fovs."""
    names = [f.fov for f in failures if f.fov is not None and f.is_recipe_error][:MAX_TRY_FOVS]
    # a name a command line cannot carry as typed (a comma, spaces at its ends, control characters)
    if not names or any("," in n or n != n.strip() or printable.escape(n) != n for n in names):
        return None
    return names


def next_step_commands(failures, manifest: Manifest, args: Options) -> list[tuple[str, str]]:
    """What to do after failed FOVs, as (what it is for, command): a recipe bug needs a new run (a
    resume reruns the run's own recipe), tried first on the FOVs it failed on; a resume only for
    causes outside the recipe (data, network, machine), fixed where they are. The terminal and
    report.html show the same commands."""
    if not any(f.is_recipe_error for f in failures):
        return [("fix the data or the cause above, then process what is left", resume_hint(manifest, args))]
    steps = []
    tried = _try_fovs(failures)
    if tried:
        steps.append((f"after fixing the recipe, try it on the FOV(s) it failed on ({', '.join(tried)})",
                      new_run_hint(manifest, args, tried)))
    steps.append(("then run the fixed recipe on the whole experiment, as a new run" if tried else
                  "after fixing the recipe, start a new run", new_run_hint(manifest, args)))
    if not all(f.is_recipe_error for f in failures):
        steps.append(("for the FOVs that failed for a cause outside the recipe, process what is left",
                      resume_hint(manifest, args)))
    return steps


def next_steps(failures, manifest: Manifest, args: Options) -> str:
    recipe = [f for f in failures if f.is_recipe_error]
    lines = []
    if recipe:
        names = ", ".join(printable.line(f.fov or "?") for f in recipe[:5]) + (" ..." if len(recipe) > 5 else "")
        lines.append(f"The recipe raised an error on {len(recipe)} FOV(s) ({names}). A resume reruns this run's "
                     "own recipe, so start a new run for a fixed one.")
    for purpose, command in next_step_commands(failures, manifest, args):
        lines.append(f"{purpose[0].upper()}{purpose[1:]}:\n  {command}")
    return "\n".join(lines)
