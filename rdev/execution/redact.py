"""Keeping credentials out of events, results, errors and logs.

A clone URL may carry `user:token@`, and RDEV_GIT_TOKEN is a secret too. Everything a handler
writes (event data, results, failure messages) passes through a `Redactor`, which masks URL
user-info and every known secret string wherever it appears.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from rdev.config import Settings

MASK = "***"
_USERINFO = re.compile(r"(\b[a-zA-Z][\w+.-]*://)[^/@\s]+@")
MIN_SECRET_CHARS = 4  # shorter strings would mask ordinary words


class Redactor:
    """Masks a fixed set of secrets, and any URL user-info, in text and JSON values."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len,
                              reverse=True)

    @classmethod
    def for_task(cls, settings: Settings, spec: dict[str, Any]) -> Redactor:
        """The secrets of this configuration and of this task's clone URL."""
        secrets = [settings.git_token or ""]
        url = spec.get("git_clone_url")
        if isinstance(url, str):
            secrets += url_secrets(url)
        return cls(secrets)

    def text(self, value: str) -> str:
        """`value` with secrets masked."""
        value = _USERINFO.sub(rf"\1{MASK}@", value)
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string in it masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


def url_secrets(url: str) -> list[str]:
    """The user name and password inside a URL's user-info, raw and percent-decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if "@" not in parts.netloc or not parts.scheme:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    # Over http(s) a lone user name is usually a token; over ssh it is just "git".
    found = [userinfo, user, password] if parts.scheme in ("http", "https") else [password]
    return [*found, *(unquote(s) for s in found)]
