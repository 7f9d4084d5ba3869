"""The test suite, split by layer (unit, workers, launcher, terraform, e2e: pytest markers of
the same names, set from each test's folder), with one support layer in ``tests.support``."""
