"""Collecting events: turning validated client events into the log and features."""
