"""Invoke namespaces; tasks.py at the project root only assembles them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from invoke import Exit
from invoke import task as invoke_task

from slakit.errors import SlakitError


def task(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """`invoke.task` that turns a SlakitError into one line on stderr and its exit code."""

    def decorate(func: Callable[..., Any]) -> Any:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except SlakitError as err:
                raise Exit(f"slakit: {err}", code=err.exit_code) from None

        return invoke_task(**kwargs)(wrapper)

    if len(args) == 1 and callable(args[0]) and not kwargs:  # bare @task
        return decorate(args[0])
    return decorate
