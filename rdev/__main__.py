"""`python -m rdev` is the `rdev` command."""

from rdev.cli import main

main()
