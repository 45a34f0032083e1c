"""The public API is what ``oncely.__all__`` names; everything else is private."""

from __future__ import annotations

import pkgutil

import oncely


def test_exported_members_are_exactly_the_public_names() -> None:
    public = {name for name in dir(oncely) if not name.startswith("_")}
    # Submodules become attributes of the package once anything imports them: they are
    # not public names. Listed from the package itself, so a new subpackage needs no edit.
    modules = {m.name for m in pkgutil.iter_modules(oncely.__path__)}
    assert public - modules == set(oncely.__all__) - {"__version__"}
    for name in oncely.__all__:
        assert getattr(oncely, name) is not None


def test_app_signature_matches_the_docs() -> None:
    import inspect

    params = inspect.signature(oncely.App.add_job).parameters
    for name in [
        "cron",
        "at",
        "every",
        "task",
        "http",
        "shell",
        "sql",
        "payload",
        "retries",
        "timezone",
        "replace",
        "overlap",
        "misfire",
        "queue",
        "priority",
        "timeout",
    ]:
        assert name in params
