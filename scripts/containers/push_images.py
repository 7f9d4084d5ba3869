#!/usr/bin/env python3
"""Tag and push both worker images to the ECR repositories the Terraform module made.

    python scripts/containers/push_images.py [--engine docker|podman] [--tag latest]
        [--tf-dir DIR | --tf-outputs FILE] [--image-prefix starfish-batch-] [--dry-run]

Reads the module's `launcher_config` (or its separate outputs `process_fov_repository_url`,
`merge_repository_url` and `region`) from `terraform output -json` (in --tf-dir, default the
repo root) or a saved copy of it (--tf-outputs FILE; plain {"name": value} is accepted too),
logs the container engine in to each ECR registry with a token from
`aws ecr get-login-password` (or boto3's GetAuthorizationToken when the aws CLI is absent),
then tags and pushes <prefix>process-fov:<tag> and <prefix>merge-batch-job:<tag> to the
module's repositories. With `create_repositories = false` the module has none: each image goes
to the URI its job definition runs (`process_fov_image`, `merge_image`), --tag unused; a
registry other than ECR must be logged in to beforehand. Credentials come from the
usual AWS chain (profile, SSO, role); nothing is stored here, and the password goes to
`<engine> login --password-stdin`, never to a command line. --dry-run prints the commands.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"process-fov": "process_fov_repository_url", "merge-batch-job": "merge_repository_url"}
# The URI each job definition runs (launcher_config): where the image goes without repositories.
IMAGE_URIS = {"process-fov": "process_fov_image", "merge-batch-job": "merge_image"}
ECR_REGISTRY = re.compile(r"^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class PushError(Exception):
    pass


def read_outputs(tf_dir: Path, tf_outputs: Path | None) -> dict:
    if tf_outputs is not None:
        try:
            raw = json.loads(tf_outputs.read_text())
        except (OSError, ValueError) as exc:
            raise PushError(f"cannot read Terraform outputs {tf_outputs}: {exc}") from exc
    else:
        if shutil.which("terraform") is None:
            raise PushError("terraform is not on PATH: give --tf-outputs FILE")
        proc = subprocess.run(
            ["terraform", f"-chdir={tf_dir}", "output", "-json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise PushError(f"terraform output -json failed in {tf_dir}: {proc.stderr.strip()}")
        raw = json.loads(proc.stdout or "{}")
    # `terraform output -json` gives {"name": {"value": ..., "type": ..., "sensitive": ...}}
    outputs = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw.items()}
    if isinstance(outputs.get("launcher_config"), dict):  # the module's one object wins
        outputs = {**outputs, **outputs.pop("launcher_config")}
    missing = [k for k in ("region",) if not outputs.get(k)]
    missing += [repo for target, repo in IMAGES.items()
                if not outputs.get(repo) and not outputs.get(IMAGE_URIS[target])]
    if missing:
        raise PushError(f"Terraform outputs lack {', '.join(missing)} (was the module applied?)")
    return outputs


def destinations(outputs: dict, tag: str) -> dict[str, str]:
    """Where each image goes: <repository url>:<tag>, or (create_repositories = false) the
    image URI the job definition runs."""
    return {target: f"{outputs[repo]}:{tag}" if outputs.get(repo) else outputs[IMAGE_URIS[target]]
            for target, repo in IMAGES.items()}


def ecr_password(region: str) -> str:
    if shutil.which("aws"):
        proc = subprocess.run(
            ["aws", "ecr", "get-login-password", "--region", region],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise PushError(f"aws ecr get-login-password failed: {proc.stderr.strip()}")
        return proc.stdout.strip()
    # lazy: boto3 ~1 s; only this fallback needs it
    import boto3  # the workers' dependency; present in the project venv

    data = boto3.client("ecr", region_name=region).get_authorization_token()
    token = data["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    if user != "AWS" or not password:
        raise PushError("unexpected ECR authorization token")
    return password


def run(cmd: list[str], dry_run: bool, stdin: str | None = None) -> None:
    print("+ " + shlex.join(cmd), file=sys.stderr, flush=True)
    if dry_run:
        return
    proc = subprocess.run(cmd, input=stdin, text=True, check=False)
    if proc.returncode != 0:
        raise PushError(f"{cmd[0]} {cmd[1]} exited {proc.returncode}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engine", default="docker")
    p.add_argument("--tag", default="latest")
    p.add_argument("--image-prefix", default="starfish-batch-")
    p.add_argument("--tf-dir", type=Path, default=REPO_ROOT)
    p.add_argument("--tf-outputs", type=Path)
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    try:
        outputs = read_outputs(args.tf_dir, args.tf_outputs)
        remotes = destinations(outputs, args.tag)
        registries = {uri.split("/", 1)[0] for uri in remotes.values()}
        for registry in sorted(registries):
            ecr = ECR_REGISTRY.match(registry)
            if not ecr:  # the team's own registry: logged in to beforehand
                print(f"(not ECR: {registry} uses the engine's own login)", file=sys.stderr)
                continue
            password = "DRY-RUN" if args.dry_run else ecr_password(ecr.group(1))
            run([args.engine, "login", "--username", "AWS", "--password-stdin", registry], args.dry_run, stdin=password)
        for target, remote in remotes.items():
            local = f"{args.image_prefix}{target}:{args.tag}"
            run([args.engine, "tag", local, remote], args.dry_run)
            run([args.engine, "push", remote], args.dry_run)
            print(remote)
    except PushError as exc:
        print(f"push_images: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
