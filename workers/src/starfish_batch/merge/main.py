"""The merge-batch-job worker: every FOV's table into one ``merged_decoded_fovs.nc``.

    merge-batch-job [--manifest-url URL] [--allow-partial]

The entry point of the merge image: the flags and environment in, ``pipeline.merge_run``,
one line out (and exit 1 on failure, naming the FOV or file at fault).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Mapping

from starfish_batch.core import signals, storage
from starfish_batch.core.contract import MANIFEST_SHA256_VAR, MANIFEST_URL_VAR
from starfish_batch.core.contract import MERGE as PROG
from starfish_batch.core.errors import StarfishBatchError
from starfish_batch.core.manifest import Manifest
from starfish_batch.merge.pipeline import merge_run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest-url", help="the run's manifest.json (default: $RUN_MANIFEST_URL)")
    p.add_argument("--allow-partial", action="store_true",
                   help="merge the FOVs that have an output and list the others as missing "
                   "(also: MERGE_ALLOW_PARTIAL=1)")
    p.add_argument("--overlap", choices=("nearest", "keep-all", "take-max"),
                   help="merge again under another rule than the run's (see the launcher's --overlap)")
    return p


def _exit_if_abandoned(code: int) -> int:
    """End now when HDF5 could not close the merged file (a full disk): the interpreter's
    clean-up would make HDF5 crash (exit 139) after the error line; see ``MergedWriter.abort``."""
    from starfish_batch.merge import writer  # lazy: merge.writer pulls numpy into merge start-up

    if writer.abandoned():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = _parser().parse_args(argv)
    signals.sigterm_exits()
    try:
        url = args.manifest_url or env.get(MANIFEST_URL_VAR)
        if not url:
            raise StarfishBatchError("no manifest: set RUN_MANIFEST_URL or pass --manifest-url")
        allow_partial = args.allow_partial or env.get("MERGE_ALLOW_PARTIAL", "").lower() in (
            "1", "true", "yes")
        manifest = Manifest.load(storage.absolute(url), env.get(MANIFEST_SHA256_VAR))
        result = merge_run(manifest, allow_partial=allow_partial, overlap=args.overlap)
    except StarfishBatchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return _exit_if_abandoned(1)
    except Exception as exc:
        traceback.print_exc()
        print(f"{PROG}: unexpected error: {type(exc).__name__}: {exc}".splitlines()[0],
              file=sys.stderr)
        return _exit_if_abandoned(1)
    partial = f" ({len(result.missing)} missing)" if result.missing else ""
    print(f"{PROG}: merged {result.n_fovs} FOVs{partial}: {result.n_features} features, "
          f"{result.n_spots} decoded spots in {result.seconds:.1f} s -> {result.merged_url}",
          file=sys.stderr)
    print(f"{PROG}: {result.summary.overlap['closing_line']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
