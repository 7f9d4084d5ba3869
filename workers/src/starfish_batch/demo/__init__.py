"""The demo and test tooling: a synthetic ISS experiment with its ground truth (``experiment``),
scoring against it (``evaluate``), and synthetic decoded tables for tests and benchmarks
(``testing``). Neither worker needs it."""
