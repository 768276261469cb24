"""The spec of each built-in task type, validated at enqueue.

A spec that fails validation is rejected with INVALID_SPEC naming the field at fault; nothing is
stored. Each model forbids unknown fields so a typo is an error, not a silently ignored option.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

CLONE_URL = re.compile(r"^(https?|ssh|git|file)://\S+$|^[\w.-]+@[\w.-]+:\S+$")
REF_NAME = re.compile(r"^(?!-)(?!.*\.\.)[\w./-]{1,200}$")
K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class Spec(BaseModel):
    """Base of every spec: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RepoSpec(Spec):
    """A spec that works on a git repository."""

    git_clone_url: NonEmpty
    branch: str | None = None

    @field_validator("git_clone_url")
    @classmethod
    def _clone_url(cls, value: str) -> str:
        if not CLONE_URL.match(value):
            raise ValueError("must be an http(s), ssh, git or file URL, or user@host:path")
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str | None) -> str | None:
        if value is not None and not REF_NAME.match(value):
            raise ValueError("is not a valid git branch name")
        return value


class BuildSpec(RepoSpec):
    """Run a coding agent on a repository, then commit and push what it changed."""

    prompt: Annotated[str, StringConstraints(min_length=1)]
    agent: NonEmpty | None = None
    model: NonEmpty | None = None
    max_turns: int | None = Field(None, ge=1, le=1000)
    session_id: NonEmpty | None = None
    auto_commit: bool = True
    auto_push: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class SdlcSpec(RepoSpec):
    """Run an SDLC CLI command on a repository, then commit and push."""

    command: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\w.:-]+$")]
    args: list[Annotated[str, StringConstraints(max_length=4000)]] = Field(
        default_factory=list, max_length=100
    )
    auto_commit: bool = True
    auto_push: bool = False


class TestSpec(RepoSpec):
    """Run a repository's test command (an argument list, never a shell string)."""

    __test__ = False  # not a pytest test class

    command: list[Annotated[str, StringConstraints(max_length=4000)]] = Field(
        min_length=1, max_length=100
    )


class DeploySpec(Spec):
    """Roll out an image to a Kubernetes deployment."""

    deployment: Annotated[str, StringConstraints(pattern=K8S_NAME.pattern)]
    image: Annotated[str, StringConstraints(min_length=1, max_length=500, pattern=r"^\S+$")]
    container: Annotated[str, StringConstraints(pattern=K8S_NAME.pattern)] | None = None
    namespace: Annotated[str, StringConstraints(pattern=K8S_NAME.pattern)] | None = None


BUILTIN: dict[str, type[Spec]] = {
    "build": BuildSpec,
    "sdlc": SdlcSpec,
    "test": TestSpec,
    "deploy": DeploySpec,
}
