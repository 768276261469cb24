"""Masking credentials of clone URLs and configured tokens in text and JSON values."""

from __future__ import annotations

from rdev.config import Settings
from rdev.execution.redact import Redactor, url_secrets


def test_url_userinfo_is_masked_anywhere_in_text() -> None:
    """Any `scheme://user:pass@` in a message loses its user-info."""
    redactor = Redactor([])
    text = "fatal: unable to access 'https://bot:tok3n@git.example/r.git/': 403"
    assert redactor.text(text) == "fatal: unable to access 'https://***@git.example/r.git/': 403"


def test_task_secrets_are_masked_even_without_a_url() -> None:
    """The token and URL password are masked wherever they appear, decoded or not."""
    settings = Settings(git_token="configured-token")
    spec = {"git_clone_url": "https://bot:p%40ss-word@git.example/r.git"}
    redactor = Redactor.for_task(settings, spec)
    value = {"a": ["echo p@ss-word", "configured-token"], "n": 3}
    assert redactor.value(value) == {"a": ["echo ***", "***"], "n": 3}


def test_ssh_user_names_are_not_secrets() -> None:
    """`git@host` carries no secret, so the word git is never masked."""
    assert url_secrets("ssh://git@github.com/o/r.git") == ["", ""]
    assert Redactor([*url_secrets("ssh://git@github.com/o/r.git")]).text("git push") == "git push"


def test_short_strings_are_never_treated_as_secrets() -> None:
    """Secrets shorter than four characters are ignored rather than masking common words."""
    assert Redactor(["ab"]).text("abc") == "abc"
