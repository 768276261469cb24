"""Celery settings derived from rdev's: the delivery guarantees design.md relies on."""

from __future__ import annotations

from rdev.config import Settings
from rdev.tasks.celery_app import celery_config, make_celery


def test_delivery_is_at_least_once_with_prefetch_one() -> None:
    """acks_late, reject on worker loss, JSON only, one prefetched message, events on."""
    config = celery_config(Settings())
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["worker_send_task_events"]


def test_visibility_timeout_exceeds_the_longest_task_and_priorities_have_ten_levels() -> None:
    """Redis never redelivers a running task, and every rdev priority has its own list."""
    settings = Settings(max_task_timeout_s=7200)
    options = celery_config(settings)["broker_transport_options"]
    assert options["visibility_timeout"] > 7200
    assert options["priority_steps"] == list(range(10))


def test_app_connects_to_nothing_when_made() -> None:
    """Building the app opens no connection (the broker below does not exist)."""
    app = make_celery(Settings(broker_url="redis://127.0.0.1:1/0"))
    assert "rdev.tasks.execute" in app.conf.include
    assert app.conf.beat_scheduler == "rdev.tasks.beat:Scheduler"
