"""The argument check that constructors across the packages share (``metro_pomdp`` and
``memory.fwm`` import nothing of ours and keep their own)."""

from __future__ import annotations


def check_positive_int(name: str, value, optional: bool = False) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int >= 1 (a bool is not),
    or None where ``optional``."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        kind = "None or a positive integer" if optional else "a positive integer"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
