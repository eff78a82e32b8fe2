"""The session's refusal: a usage or configuration problem, said as one message (exit 2)."""

from __future__ import annotations


class ConfigError(Exception):
    """A usage or configuration error (bad option, bench file, faults file): exit code 2."""
