"""The merge-batch-job image: every FOV's table streamed into one merged result.

``job`` is the entry point (``merge-batch-job``); ``schema`` says what a per-FOV table holds
and what the merged one is, ``reader`` reads the per-FOV tables into blocks, ``strings`` keeps
their string columns as codes, ``writer`` appends the blocks to the merged netCDF file;
``spots`` writes the CSV of spots, ``summary`` the counts and timings, ``plot`` qc.png.
Runs in the merge container on AWS Batch, or as a local process started by the launcher.
"""
