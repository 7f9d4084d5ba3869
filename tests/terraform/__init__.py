"""Tests of the terraform layer."""
