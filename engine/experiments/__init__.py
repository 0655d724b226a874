"""Experiments: definitions, assignment, tracking, statistics, report."""
