"""The launcher: what runs on the scientist's machine (``scripts/starfish_workflow.py``), in no image.

``cli`` parses and dispatches to ``commands/``; ``runs`` checks and writes a run before any
worker starts; ``executors/`` run the workers (``local`` as processes here, ``batch/`` on AWS
Batch from the Terraform outputs, ``slurm/`` with sbatch); ``console`` prints the outcome and
``run_page`` writes its part of report.html.
"""
