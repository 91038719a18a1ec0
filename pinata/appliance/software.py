"""The software list `/software` shows: each distribution installed beside us.

An image carries its list (`software.json`, read by the unikernel's launcher);
`pinata toy` and `pinata serve` from an environment ask `importlib.metadata`
once, at start, and keep only the (name, version) pairs.
"""

from __future__ import annotations


def installed_software() -> tuple[tuple[str, str], ...]:
    """The (name, version) of each distribution on the import path, the first found of
    each name, sorted by name regardless of case. Raises OSError if a distribution's
    metadata cannot be read."""
    # Imported here, not at the top: an image never scans (it reads its list), and
    # importlib.metadata brings email's message classes and zipfile with it, which
    # would stay in memory for as long as the appliance serves (issue 18).
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        # One parse of METADATA per distribution: `dist.name` and `dist.version`
        # would each read and parse it again (Python 3.11's importlib.metadata).
        fields = dist.metadata
        name = fields["Name"]
        if name:
            found.setdefault(name, fields["Version"])
    return tuple(sorted(found.items(), key=lambda item: item[0].lower()))
