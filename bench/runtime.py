"""Helpers of bench's own processes (the CLI, executor workers, Distributed PPO ranks), at the
bottom of the import graph: nothing here imports another bench module."""

from __future__ import annotations

import os
import signal
import sys


def fail(message: str) -> int:
    """A command's one-line error on stderr; its exit status (2: bad input)."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def warm_up() -> None:
    """Pays one-time lazy imports before a run's clock starts: the first optimizer a process
    builds imports ``torch._dynamo`` (over a second on a laptop core), which would otherwise be
    charged to the first run of every worker process."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def die_with_parent() -> None:
    """Linux: this worker process is killed when the process that started it dies (e.g. a
    ``bench run`` killed with SIGKILL), instead of training on as an orphan."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before the call
            os._exit(1)
    except (OSError, AttributeError):
        pass
