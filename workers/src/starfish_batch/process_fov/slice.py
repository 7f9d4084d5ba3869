"""A packed process-fov child: the FOVs of one array index, run one after another in one process.

One Python start, one ``import starfish`` and one S3 client serve every FOV of the slice
(``Manifest.job_fovs``). Each FOV is committed as it finishes, exactly as a one-FOV child
commits it (``process_fov.main.run_one``: its table, then its record), so resume, status, the report
and the merge stay per FOV. A FOV that fails is written down in ``failures/<key>.json``
(``core.fov_failure``) and the child goes on with the next; a retried child skips the FOVs
whose outputs are whole (``fov_output``) and redoes the rest.

The child's exit status says whether a retry could help: non-zero only when a FOV failed for a
reason outside the recipe and the data (storage or network), so Batch and the launcher never
rerun a whole slice for a recipe error.
"""

from __future__ import annotations

import datetime as dt
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from starfish_batch.core import storage
from starfish_batch.core.contract import PROCESS_FOV
from starfish_batch.core.errors import RecipeError, StarfishBatchError, StorageError
from starfish_batch.core.fov_failure import FovFailure, failure_url
from starfish_batch.core.manifest import Manifest
from starfish_batch.core.records import FovRecord

RunOne = Callable[[Manifest, int], FovRecord]


def classify(exc: BaseException) -> tuple[bool, bool]:
    """(retryable, out_of_memory) of a FOV's failure.

    The recipe's own errors and bad data fail again on a retry; so does memory at the same
    size (the launcher escalates it instead). Storage faults and anything unexpected (a bug of
    ours, a library's network error) may not.
    """
    text = f"{type(exc).__name__}: {exc}"
    out_of_memory = isinstance(exc, MemoryError) or "MemoryError" in text
    if out_of_memory or isinstance(exc, RecipeError):
        return False, out_of_memory
    if isinstance(exc, StorageError):
        return True, False
    if isinstance(exc, StarfishBatchError):
        return False, False
    return True, False


@dataclass
class SliceOutcome:
    """What one packed child did: the records of its FOVs, and its failures."""

    records: list[FovRecord] = field(default_factory=list)
    failures: list[FovFailure] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a retry could fix a FOV that failed; 0 otherwise (failures are recorded)."""
        return 1 if any(f.retryable for f in self.failures) else 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, StarfishBatchError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def run_slice(manifest: Manifest, job_index: int, run_one: RunOne, job_id: str = "") -> SliceOutcome:
    """Run every FOV of job ``job_index``; ``run_one(manifest, fov_index)`` is the one-FOV worker.

    SIGTERM (``SystemExit``) and Ctrl-C end the slice at once: what was committed stays, and
    the retry redoes the rest.
    """
    outcome = SliceOutcome()
    indexes = manifest.job_fovs(job_index)
    print(f"{PROCESS_FOV}: job {job_index}: {len(indexes)} FOV(s), indexes {indexes.start} to "
          f"{indexes.stop - 1}", file=sys.stderr, flush=True)
    for index in indexes:
        fov = manifest.fovs[index]
        try:
            record = run_one(manifest, index)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - one FOV's failure must not stop the slice
            if not isinstance(exc, StarfishBatchError):
                traceback.print_exception(exc, file=sys.stderr)
            reason = _one_line(exc)
            if not reason.startswith(f"FOV {fov}"):
                reason = f"FOV {fov}: {reason}"
            retryable, out_of_memory = classify(exc)
            failure = FovFailure(
                fov=fov, index=index, reason=reason, run_id=manifest.run_id,
                recipe_sha256=manifest.recipe_sha256, retryable=retryable, out_of_memory=out_of_memory,
                job_id=job_id, failed_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
            print(f"{PROCESS_FOV}: error: {reason}", file=sys.stderr, flush=True)
            try:
                storage.write_text(failure_url(manifest, fov), failure.to_json())
            except StarfishBatchError as write_exc:  # the launcher cannot learn it: let a retry try again
                print(f"{PROCESS_FOV}: error: cannot record FOV {fov}'s failure: {write_exc}",
                      file=sys.stderr, flush=True)
                failure.retryable = True
            outcome.failures.append(failure)
            continue
        outcome.records.append(record)
        print(f"{PROCESS_FOV}: FOV {record.fov}: {record.n_features} features in {record.seconds or 0:.1f} s",
              file=sys.stderr, flush=True)
    done = len(indexes) - len(outcome.failures)
    print(f"{PROCESS_FOV}: job {job_index}: {done} of {len(indexes)} FOV(s) done"
          + (f", {len(outcome.failures)} failed ({sum(f.retryable for f in outcome.failures)} a retry may fix)"
             if outcome.failures else ""), file=sys.stderr, flush=True)
    return outcome
