"""Peak memory of a run: the resident set size high-water mark of the process that runs it, reset
when the run starts (Linux: ``/proc/self/clear_refs``), and the parameter counts of the models a
run holds (language-model runs: policy, reference, reward model, critic).

Only the run's own process is measured: the extra processes of Distributed PPO's workers are not
in it. Where the high-water mark cannot be reset (not Linux, or no permission), nothing is
recorded: a process-lifetime peak would carry the memory of earlier runs into later ones.
"""

from __future__ import annotations

from pathlib import Path


def reset_peak() -> bool:
    """Resets this process's peak resident set size (VmHWM) to its current size; False when the
    system does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """This process's peak resident set size since the last ``reset_peak``, in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def parameters(model) -> int:
    """Number of parameters of a torch module (shared tensors counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
