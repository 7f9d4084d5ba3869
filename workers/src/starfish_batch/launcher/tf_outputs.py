"""The Terraform outputs the Batch executor needs (docs/design.md, "Terraform outputs read by the
launcher").

They come from ``terraform output -json`` run in ``--tf-dir`` (default: the repo root, the
directory holding the module's ``main.tf``), from a saved copy of it (``--tf-outputs FILE``), or
from the module's SSM parameter (``--config-parameter NAME``, or ``--deployment NAME`` for the
default name ``/starfish-batch/NAME/launcher-config``), which needs no Terraform state. The
module's ``launcher_config`` output holds them all in one object: a stack that re-exports only
that one is read the same. A missing or incomplete set is an error naming what is missing and
how to get it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

from starfish_batch.core import storage
from starfish_batch.core.errors import StarfishBatchError

REQUIRED = (
    "region",
    "job_queue_arn",
    "process_fov_job_definition_arn",
    "merge_job_definition_arn",
    "results_bucket",
    "log_group_name",
    "submitter_policy_arn",
)
# The module's one object holding them all (and the SSM parameter's JSON document).
CONFIG_OUTPUT = "launcher_config"
# Where the module writes launcher_config by default (its ssm_parameter_name = null).
PARAMETER_NAME = "/starfish-batch/{deployment}/launcher-config"
TERRAFORM_TIMEOUT_S = 300
HOW_TO_GET = (
    "a platform team runs `terraform apply` with the starfish-batch module (the repo root, an "
    "examples/<name> root module, or their own stack re-exporting its launcher_config output); "
    "then pass --deployment NAME (the module's name_prefix: its SSM parameter), "
    "--config-parameter NAME, --tf-dir DIR (where it was applied) or --tf-outputs FILE (saved "
    "with `terraform output -json > FILE`)"
)


@dataclass(frozen=True)
class TfOutputs:
    """The contract outputs of one applied starfish-batch module."""

    region: str
    job_queue_arn: str
    process_fov_job_definition_arn: str
    merge_job_definition_arn: str
    results_bucket: str
    log_group_name: str
    submitter_policy_arn: str
    source: str = "terraform outputs"
    extra: dict = field(default_factory=dict, compare=False, repr=False)
    """Every other output of the module (plain values), e.g. ``job_queue_name``."""

    def describe(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in REQUIRED}


def parse_outputs(data: object, source: str) -> TfOutputs:
    """Outputs from the JSON of ``terraform output -json`` (``{name: {"value": ...}}``).

    A plain ``{name: value}`` object is accepted too, for a hand-written file.
    """
    if not isinstance(data, dict):
        raise StarfishBatchError(
            f"{source} is not a JSON object of Terraform outputs; {HOW_TO_GET}")
    if not data:
        raise StarfishBatchError(
            f"no Terraform outputs in {source}: the module has not been applied there "
            f"(no state); {HOW_TO_GET}"
        )
    values: dict[str, object] = {}
    for name, item in data.items():
        values[name] = item["value"] if isinstance(item, dict) and "value" in item else item
    config = values.pop(CONFIG_OUTPUT, None)
    if config is not None:
        if not isinstance(config, dict):
            raise StarfishBatchError(
                f"{CONFIG_OUTPUT} in {source} is not an object; re-export the module's "
                f"{CONFIG_OUTPUT} output as it is")
        values = {**values, **config}  # the one object wins over separate outputs
    missing = [name for name in REQUIRED if name not in values]
    if missing:
        raise StarfishBatchError(
            f"Terraform outputs in {source} lack {', '.join(missing)}: not the outputs of the "
            f"starfish-batch module, or of an older version of it; {HOW_TO_GET}"
        )
    bad = [name for name in REQUIRED if not isinstance(values[name], str) or not values[name]]
    if bad:
        raise StarfishBatchError(
            f"Terraform outputs in {source}: {', '.join(bad)} must be non-empty strings; "
            f"{HOW_TO_GET}"
        )
    extra = {k: v for k, v in values.items() if k not in REQUIRED}
    return TfOutputs(**{name: values[name] for name in REQUIRED}, source=source, extra=extra)


def load_outputs_file(path: str | Path) -> TfOutputs:
    """Outputs from a saved ``terraform output -json`` file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StarfishBatchError(f"cannot read --tf-outputs {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StarfishBatchError(
            f"--tf-outputs {path} is not JSON ({exc}); save it with `terraform output -json > FILE`"
        ) from exc
    return parse_outputs(data, str(path))


def parameter_name(deployment: str) -> str:
    """The SSM parameter the module writes for deployment (name_prefix) ``deployment``."""
    if not deployment or "/" in deployment:
        raise StarfishBatchError(
            f"--deployment {deployment!r}: give the deployment's name (the module's name_prefix, "
            "e.g. starfish-batch), or the parameter itself with --config-parameter NAME")
    return PARAMETER_NAME.format(deployment=deployment)


def load_parameter(name: str, session=None) -> TfOutputs:
    """Outputs from the module's SSM parameter (launcher_config as JSON), in the environment's
    region (AWS_REGION, the profile): what a scientist without Terraform state reads."""
    import boto3  # lazy: boto3 ~1 s
    from botocore.exceptions import BotoCoreError, ClientError  # lazy: botocore ~0.1-1 s

    session = session or boto3.session.Session()
    if not session.region_name:
        raise StarfishBatchError(
            f"no AWS region to read the SSM parameter {name} in: set AWS_REGION (or "
            "AWS_DEFAULT_REGION, or a profile's region) to the deployment's region")
    where = f"SSM parameter {name} in {session.region_name}"
    try:
        ssm = session.client("ssm", config=storage.botocore_config())
        text = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise StarfishBatchError(
                f"{where} does not exist: check the deployment's name and region (the module's "
                "config_parameter_name output says where it is), or pass --tf-outputs FILE"
            ) from exc
        if code in ("AccessDeniedException", "AccessDenied"):
            raise StarfishBatchError(
                f"not allowed to read {where}: ask the platform team to attach the module's "
                f"submitter policy to your role ({exc.response['Error'].get('Message', code)})"
            ) from exc
        raise StarfishBatchError(f"cannot read {where}: {code}: {exc}") from exc
    except BotoCoreError as exc:
        raise StarfishBatchError(f"cannot read {where}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StarfishBatchError(f"{where} is not JSON ({exc}): not a starfish-batch launcher_config") from exc
    return parse_outputs(data, where)


def find_module_dir(start: Path | None = None) -> Path | None:
    """The nearest directory holding the module (``main.tf``, or its ``outputs.tf``) above
    ``start`` (default: this package's folder, then the current directory)."""
    starts = [start] if start is not None else [Path(__file__).resolve().parent, Path.cwd()]
    for base in starts:
        for directory in (base, *base.parents):
            if (directory / "main.tf").is_file() or (directory / "outputs.tf").is_file():
                return directory
    return None


def terraform_output_json(tf_dir: str | Path, terraform: str = "terraform") -> dict:
    """Runs ``terraform output -json`` in ``tf_dir`` and returns the parsed object."""
    tf_dir = Path(tf_dir).expanduser()
    if not tf_dir.is_dir():
        raise StarfishBatchError(f"--tf-dir {tf_dir} is not a directory; {HOW_TO_GET}")
    exe = shutil.which(terraform)
    if exe is None:
        raise StarfishBatchError(
            f"`{terraform}` is not on PATH, so the outputs in {tf_dir} cannot be read; install "
            "Terraform, or pass --tf-outputs FILE (a saved `terraform output -json`)"
        )
    try:
        proc = subprocess.run(
            [exe, f"-chdir={tf_dir}", "output", "-json", "-no-color"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TERRAFORM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise StarfishBatchError(
            f"`terraform output -json` in {tf_dir} took over {TERRAFORM_TIMEOUT_S} s; "
            "pass --tf-outputs FILE instead"
        ) from exc
    if proc.returncode != 0:
        lines = [ln.strip(" │╷╵") for ln in proc.stderr.splitlines()]
        reason = next((ln for ln in lines if ln.strip()), f"exit status {proc.returncode}")
        raise StarfishBatchError(
            f"`terraform output -json` failed in {tf_dir}: {reason}; {HOW_TO_GET}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise StarfishBatchError(
            f"`terraform output -json` in {tf_dir} did not print JSON: {exc}"
        ) from exc


def read_outputs(tf_dir: str | Path | None = None,
                 tf_outputs: str | Path | None = None,
                 config_parameter: str | None = None,
                 deployment: str | None = None) -> TfOutputs:
    """The module's outputs: from ``tf_outputs`` (a file), the SSM parameter
    ``config_parameter`` (or the one of ``deployment``), else ``terraform output`` in
    ``tf_dir`` (default: the module above this package or the current directory)."""
    given = [flag for flag, value in (("--tf-dir", tf_dir), ("--tf-outputs", tf_outputs),
                                      ("--config-parameter", config_parameter),
                                      ("--deployment", deployment)) if value]
    if len(given) > 1:
        raise StarfishBatchError(f"give one of {', '.join(given)}, not {len(given)}")
    if tf_outputs:
        return load_outputs_file(tf_outputs)
    if config_parameter or deployment:
        return load_parameter(config_parameter or parameter_name(deployment))
    if tf_dir is None:
        found = find_module_dir()
        if found is None:
            raise StarfishBatchError(
                "no Terraform module found (no main.tf above the starfish_batch package or the "
                f"current directory); {HOW_TO_GET}"
            )
        tf_dir = found
    data = terraform_output_json(tf_dir)
    return parse_outputs(data, f"`terraform output -json` in {tf_dir}")
