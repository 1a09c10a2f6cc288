"""Logging, metrics and system events."""
