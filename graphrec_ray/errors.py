"""Errors a user can cause and fix (shown as one line by the CLI, never a traceback)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: a missing folder, a bad argument, an unreadable file."""


class ConfigError(UserError):
    """An invalid configuration: unknown key, wrong type, missing file."""


class DataError(UserError):
    """Input data that cannot be used at all (missing required file or column)."""
