"""Run a starfish recipe over every field of view of an experiment, then merge the results."""

__version__ = "0.1.0"
