"""Where a run's workers run: this machine (local), AWS Batch (batch/), Slurm (slurm/); base.py is what
the commands need of each."""
