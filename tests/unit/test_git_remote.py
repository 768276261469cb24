"""Splitting credentials out of clone URLs and handing them to git through its environment."""

from __future__ import annotations

import base64

from rdev.execution.git import Remote


def test_credentials_move_from_url_to_header() -> None:
    """User-info leaves the URL and becomes an http.extraHeader for git."""
    remote = Remote.parse("https://bot:tok%2Fen@git.example/r.git", "x-access-token", None)
    assert remote.url == "https://git.example/r.git"
    env = remote.env()
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    encoded = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic ")
    assert base64.b64decode(encoded) == b"bot:tok/en"


def test_configured_token_is_used_for_http_urls_without_credentials() -> None:
    """RDEV_GIT_TOKEN authenticates an https remote whose URL has no user-info."""
    remote = Remote.parse("https://git.example/r.git", "x-access-token", "t0ken")
    assert base64.b64decode(remote.env()["GIT_CONFIG_VALUE_0"].split()[-1]) == (
        b"x-access-token:t0ken"
    )


def test_non_http_remotes_get_no_header() -> None:
    """file, ssh and scp-style remotes are used as given, with no credential header."""
    for url in ("file:///srv/r.git", "ssh://git@host/r.git", "git@host:o/r.git"):
        remote = Remote.parse(url, "x-access-token", "t0ken")
        assert remote.url == url
        assert remote.env() == {}
