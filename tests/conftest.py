"""Shared helpers live in the ``tests.helpers`` package; this file only marks the test root."""
