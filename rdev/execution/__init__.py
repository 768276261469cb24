"""Task execution on a worker: workspaces, git, commands, and the built-in handlers.

`rdev.execution.handlers` registers the build, sdlc, test and deploy handlers when imported
(it is listed in `rdev.handlers.BUILTIN_HANDLER_MODULES`).
"""
