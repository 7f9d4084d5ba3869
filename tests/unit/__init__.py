"""Tests of the unit layer."""
