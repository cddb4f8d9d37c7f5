"""The full registry of a process: bench's built-in algorithms, the installed entry points, then
the ``--plugin`` modules. Every process that looks algorithms or tasks up calls ``load`` first
(the CLI, suite loading, each run's worker)."""

from __future__ import annotations

from collections.abc import Iterable

from bench.registry import PluginError, import_plugin, load_entry_points

__all__ = ["PluginError", "load"]


def load(modules: Iterable[str] = ()) -> None:
    """Registers the built-ins, every installed distribution's entry points (once), then imports
    ``modules``. A module that cannot be used raises ``PluginError`` (one line); an entry point
    that cannot be used is left out and noted in ``bench.registry.BROKEN``."""
    import bench.algos  # noqa: F401 - registers the built-in algorithms

    load_entry_points()
    for module in modules:
        import_plugin(module)
