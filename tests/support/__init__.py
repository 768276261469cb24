"""Helpers shared by rdev's tests: services, processes and a probe task type."""
