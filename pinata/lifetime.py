"""A child process that must not outlive its parent.

A parent that is killed outright (SIGKILL) cannot pass its end on: the
worker it forked, the sandboxed guest its tender forked, the launcher
`python -m unikernel run` started would serve on, holding listeners that
nobody stops any more. Linux's parent-death signal (prctl(2),
PR_SET_PDEATHSIG) ends them with it. Standard library only: the sandbox and
the image runner import this without the appliance.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG = 1


def end_with_parent(parent_pid: int, signum: int) -> None:
    """Have the kernel send `signum` to this process when its parent dies, and
    send it now if the parent (`parent_pid`, which forked us) is already gone.

    Call it in the child after any change of credentials, which clears the
    setting (prctl(2)). Raises OSError if the kernel refuses it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    # Reparented before the prctl: the parent died in between, and no signal
    # will come for it.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
