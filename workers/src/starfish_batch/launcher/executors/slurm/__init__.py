"""The Slurm executor: a run as ``sbatch --array`` jobs of process-fov and one merge job after
them, on any cluster whose nodes see the results folder (a shared filesystem, or s3://).

Split like the Batch executor: ``commands`` (the Slurm commands), ``states`` (reading what
squeue/sacct print), ``jobs`` (what was submitted, its file, its job scripts), ``options``
(the flags), ``executor`` (submit, status, cancel), ``follow`` (the follow loop),
``failures`` (a failed task told as a ``Failure``) and ``run`` (the launcher's run
command on Slurm: following, resubmitting FOVs out of memory, the closing lines).
"""

from starfish_batch.launcher.executors.slurm.executor import SlurmExecutor
from starfish_batch.launcher.executors.slurm.failures import SlurmFailure
from starfish_batch.launcher.executors.slurm.jobs import SlurmSubmission
from starfish_batch.launcher.executors.slurm.options import SlurmOptions

__all__ = ["SlurmExecutor", "SlurmFailure", "SlurmOptions", "SlurmSubmission"]
