"""What the launcher prints at the end of a run: failures a scientist can act on, and a summary."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from starfish_batch import storage
from starfish_batch.contract import OUTPUT_NAMES, SPOTS_NAME, SUMMARY_NAME
from starfish_batch.errors import StarfishBatchError
from starfish_batch.manifest import Manifest


def print_failures(failures: Sequence, n_fovs: int, manifest: Manifest, tail: int = 8) -> None:
    """One block per failed FOV: its error line, then the last lines of its output."""
    out = sys.stderr
    for f in failures:
        print(f"\nFOV {f.fov} (index {f.index}) failed, exit status {f.exit_code}:", file=out)
        print(f"  {f.error_line}", file=out)
        lines = [line for line in f.tail if line.strip()][-tail:]
        if lines:
            print("  last lines of its output:", file=out)
            for line in lines:
                print(f"    | {line}", file=out)
    ok = n_fovs - len(failures)
    print(f"\n{len(failures)} of {n_fovs} FOVs failed; the outputs of the {ok} others are kept "
          f"under {storage.join(manifest.run_root, 'fovs')}", file=out)


def print_summary(manifest: Manifest, seconds: float, ground_truth: str | None = None) -> None:
    """The figures a scientist looks at first, read back from what the merge wrote."""
    summary_url = storage.join(manifest.run_root, SUMMARY_NAME)
    summary = json.loads(storage.read_text(summary_url))
    per_target = summary.get("targets", {})
    print(f"\nrun {manifest.run_id}: {len(manifest.run_fovs)} FOVs in {seconds:.1f} s")
    print(f"  features: {summary.get('n_features', 0)}, decoded spots: {summary.get('n_spots', 0)}")
    empty = summary.get("fovs_without_spots", [])
    if empty:
        print(f"  FOVs without spots: {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}")
    missing = summary.get("missing_fovs", [])
    if missing:
        print(f"  FOVs missing from the merge: {', '.join(missing[:10])}")
    if per_target:
        top = sorted(per_target.items(), key=lambda kv: (-_count(kv[1]), kv[0]))
        print("  spots per target:")
        for target, value in top[:15]:
            print(f"    {target:<20} {_count(value)}")
        if len(top) > 15:
            print(f"    ... and {len(top) - 15} more targets")
    if ground_truth:
        _print_score(manifest, ground_truth)
    print("  outputs:")
    for name in OUTPUT_NAMES:
        print(f"    {storage.join(manifest.run_root, name)}")


def _count(value) -> int:
    return int(value.get("spots", value.get("n_spots", 0))) if isinstance(value, dict) else int(value)


def _print_score(manifest: Manifest, ground_truth: str) -> None:
    import pandas as pd

    from starfish_batch.demo.evaluate import score

    spots_url = storage.join(manifest.run_root, SPOTS_NAME)
    try:
        with storage.local_copy(spots_url) as path:
            spots = pd.read_csv(path, dtype={"fov": str, "target": str}, keep_default_na=False, na_values=[""])
        with storage.local_copy(storage.absolute(ground_truth)) as path:
            result = score(spots, path)
    except (OSError, ValueError, KeyError) as exc:
        raise StarfishBatchError(f"cannot score against {ground_truth}: {exc}") from exc
    print(f"  against the ground truth {ground_truth}:")
    print(f"    recall {result['recall']:.3f}, precision {result['precision']:.3f} "
          f"({result['true_positives']} of {result['n_truth']} true spots, "
          f"{result['n_called']} called)")
