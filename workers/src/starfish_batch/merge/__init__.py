"""The merge-batch-job image: every FOV's table streamed into one merged result.

``job`` is the entry point (``merge-batch-job``); ``tableio`` reads and appends the netCDF
tables, ``spots`` writes the CSV of spots, ``summary`` the counts and timings, ``plot`` qc.png.
Runs in the merge container on AWS Batch, or as a local process started by the launcher.
"""
