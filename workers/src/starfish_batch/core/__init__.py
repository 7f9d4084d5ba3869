"""Code two or more deployables share: the run contract, manifest, records, storage, experiment
reading and report.html. It imports only itself (tests/unit/test_layers.py)."""
