"""Fill ``@@NAME@@`` placeholders in packaged scripts and manifests.

Deliberately tiny: values are restricted to a safe character set so that a rendered
shell script or YAML document can never be changed in shape by a value, and every
placeholder must be filled (a typo fails loudly instead of shipping ``@@X@@``).
"""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")
_SAFE_VALUE = re.compile(r"[A-Za-z0-9._/:+-]*")


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``@@NAME@@`` placeholders; every placeholder must have a value."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"no value for placeholder @@{key}@@")
        value = values[key]
        if not _SAFE_VALUE.fullmatch(value):
            raise ValueError(f"unsafe value for @@{key}@@: {value!r}")
        return value

    return _PLACEHOLDER.sub(fill, template)
