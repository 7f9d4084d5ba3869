"""Tests of the launcher layer."""
