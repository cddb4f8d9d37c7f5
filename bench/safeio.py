"""Writing files that other people open: atomically, never over an input, safe in a spreadsheet.

* ``write_file(out, content)``: the file appears complete or not at all. Each writer uses a
  temporary file of its own in the target's folder (``.NAME.PID.RANDOM.tmp``), removed on every
  failure path; temporary files left by killed writers (their pid is dead) are removed by the
  next write to the same target. Two processes writing one path at once leave one of the two
  files whole, never a mix.
* ``refuse_inputs(out, inputs, option)``: an output that is (or resolves to) one of the command's
  inputs is refused before anything is written, so ``-o runs/bench.sqlite`` cannot replace a store.
* ``csv_text(table)``: CSV in which no text cell starts a spreadsheet formula (``=``, ``+``,
  ``-``, ``@``, tab, carriage return): such cells get a leading ``'`` (the OWASP advice), numbers
  are left alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)


class OutputError(ValueError):
    """An output path that must not be written (one line for the user)."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_leftovers(out: Path, tag: str, suffix: str = "") -> list[Path]:
    """What killed processes left beside ``out``: the paths ``.NAME.TAG<pid>…SUFFIX`` whose pid
    is no longer alive (temporary files, half-built or moved-aside folders)."""
    prefix = f".{out.name}.{tag}"
    try:
        found = list(out.parent.glob(glob_escape(prefix) + "*" + glob_escape(suffix)))
    except OSError:
        return []
    dead = []
    for path in found:
        pid = re.match(r"\d+", path.name[len(prefix) :])
        if pid and int(pid.group()) != os.getpid() and not pid_alive(int(pid.group())):
            dead.append(path)
    return sorted(dead)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def temporary(out: Path) -> Path:
    """A fresh temporary path beside ``out``, unique to this writer."""
    return out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_file(out: str | Path, content: str | bytes | Callable[[Path], None]) -> None:
    """Writes ``content`` (text as UTF-8, bytes, or a function that writes the given path) to
    ``out`` atomically. Raises OSError; nothing is left behind on failure."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for tmp in dead_leftovers(out, "", ".tmp"):
        tmp.unlink(missing_ok=True)
    tmp = temporary(out)
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        elif isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            content(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def refuse_inputs(
    out: str | Path, inputs: Iterable[tuple[str, str | Path | None]], option: str = "-o"
) -> None:
    """Raises OutputError when ``out`` is (or resolves to) one of ``inputs`` ((name, path) pairs;
    None skipped)."""
    out = Path(out)
    for name, path in inputs:
        if path is None:
            continue
        if _same(out, Path(path)):
            raise OutputError(f"{option} {out}: is the {name} this command reads; choose another output")


def neutral(value):
    """One CSV cell made safe to open in a spreadsheet (see the module's docstring)."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_safe(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every text cell neutralised (a copy when anything changed)."""
    out = table
    for column in table.columns:
        cells = table[column]
        if not (cells.dtype == object or pd.api.types.is_string_dtype(cells)):
            continue
        text = (
            cells.map(lambda v: v if isinstance(v, str) else "")
            if cells.dtype == object
            else cells.fillna("")
        )
        risky = text.str.startswith(FORMULA_START) & ~text.str.fullmatch(_NUMBER.pattern, case=False)
        if risky.any():
            if out is table:
                out = table.copy()
            out[column] = cells.where(~risky, "'" + text)
    if any(isinstance(c, str) and c.startswith(FORMULA_START) for c in table.columns):
        out = out.rename(columns=neutral)
    return out


def csv_text(table: pd.DataFrame, index: bool = False) -> str:
    """``table`` as CSV text with formula-like text cells neutralised."""
    return csv_safe(table).to_csv(index=index)


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(new: Path, out: Path) -> None:
    """Puts the folder ``new`` at ``out`` (replacing the folder there, if any) so that a reader or
    a kill never finds no folder at ``out``: the two are exchanged in one step where the system
    allows it; elsewhere the old folder is renamed aside first and put back by ``recover_folder``
    if the process dies in between."""
    if out.exists() and _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
        return
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(out: Path) -> None:
    """Puts back the folder that ``replace_folder`` renamed aside when it was killed before the
    new one took its place (two-rename systems only)."""
    if out.exists():
        return
    for old in dead_leftovers(out, "old"):
        old.rename(out)
        return
