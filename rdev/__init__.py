"""rdev: run AI coding-agent jobs at scale.

Importing rdev has no side effects. `celery -A rdev ...` finds the Celery app in `rdev.celery`.
"""

__version__ = "0.1.0"
