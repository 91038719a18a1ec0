"""Other processes as /proc shows them, for the tests that kill a parent and
watch its children end."""

from __future__ import annotations

from pathlib import Path


def state_and_parent(pid: int) -> tuple[str, int] | None:
    """The process's state letter and parent pid; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return fields[0], int(fields[1])


def ended(pid: int) -> bool:
    """Gone, or a zombie nobody reaps (its parent is dead)."""
    found = state_and_parent(pid)
    return found is None or found[0] == "Z"
