"""The merge-batch-job image: every FOV's table streamed into one merged result.

``job`` is the entry point's face (``merge-batch-job``): ``main`` parses, ``pipeline`` merges
a run (``merge_pass`` one streaming pass, ``sources`` the per-FOV tables proven whole,
``consumer`` the CSV thread, ``result`` what it returns and report.html); ``schema`` says what a per-FOV table holds
and what the merged one is, ``reader`` reads the per-FOV tables into blocks, ``strings`` keeps
their string columns as codes, ``writer`` appends the blocks to the merged netCDF file;
``spots`` writes the CSV of spots, ``summary`` the counts and timings, ``plot`` qc.png.
Runs in the merge container on AWS Batch, or as a local process started by the launcher.
"""
