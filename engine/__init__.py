"""Omotenashi: a real-time personalization engine ("a different welcome for every visitor")."""

__version__ = "0.1.0"
