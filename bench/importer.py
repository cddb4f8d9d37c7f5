"""``bench import``: others' runs as a `bench export` table, so that reports draw them beside
bench's own and leaderboards rank them with them.

Three kinds of file are read:

* **TensorBoard event files** (``events.out.tfevents.*``, or a folder holding them; one file is one
  run), with the standard tags of stable-baselines3 (``rollout/ep_rew_mean``, and
  ``eval/mean_reward`` from its ``EvalCallback``) and of CleanRL (``charts/episodic_return``);
* **SB3 ``Monitor`` files** (``*monitor.csv``: one row per training episode; the files of one
  folder — one per env of a vectorised env — are one run);
* **another bench export** (a CSV in `bench export` format), passed through.

Bad input is refused with one ResultsError naming the file (a truncated or corrupt event file, a
Monitor line that is not an episode, the same file given twice), never imported in part. NaN and
infinite scores are left out and counted (refused when nothing finite is left), so that the table
written is one that reports and leaderboards accept.

Every imported run carries its **protocol** — what its numbers measure — and its **source**. A
training-episode return (the stochastic policy while it learns, averaged over the last 100
episodes as SB3's ``ep_rew_mean`` is) is not bench's evaluation protocol (separate greedy
episodes of the current policy), so reports show the protocol beside the run and ``bench
compare`` refuses to gate across protocols unless told they match.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.tables import plain
from bench.results import BENCH_PROTOCOL, ResultsError, check_tidy, read_csv_text

TRAINING_RETURN = "training-episode return, mean of the last 100 episodes (stochastic policy, while training)"
SB3_EVAL = "SB3 EvalCallback evaluation (separate episodes, deterministic policy by default)"
WINDOW = 100  # episodes averaged per point, as SB3's ep_rew_mean (stats_window_size = 100)
MAX_POINTS = 200  # curve points kept per imported run

# tag -> (writer, protocol, per-episode values to average, temperature of the measured policy)
TB_TAGS = {  # in the order the default looks for them
    "rollout/ep_rew_mean": ("SB3 (TensorBoard)", TRAINING_RETURN, False, 1.0),
    "charts/episodic_return": ("CleanRL (TensorBoard)", TRAINING_RETURN, True, 1.0),
    "eval/mean_reward": ("SB3 (TensorBoard, EvalCallback)", SB3_EVAL, False, 0.0),
}


@dataclass
class ImportedRun:
    path: Path
    writer: str
    protocol: str
    temperature: float
    points: pd.DataFrame  # step, value, wall_time (seconds from the run's start), n (episodes)
    digest: str
    dropped: int = 0  # NaN or infinite values left out
    duration: float | None = None  # seconds from the writer's start to its last record, where known


def _utf8(name: object) -> str:
    """A file name as UTF-8 text: bytes that are not UTF-8 (surrogates from the file system) as
    ``\\xNN``."""
    return str(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def shown(text: object) -> str:
    """Text as echoed to a terminal: undecodable bytes as ``\\xNN``, control characters (escape
    sequences) replaced, on one line."""
    return plain(_utf8(text))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ResultsError(f"{path}: cannot read: {e.strerror or e}") from None


def _check_records(path: Path, data: bytes) -> None:
    """Raises a ResultsError unless ``data`` (an event file's bytes) is whole TFRecords whose
    checksums match: tensorboard's reader stops without a word at a truncated or corrupt record,
    which would import part of a run."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    at, record = 0, 0
    while at < len(data):
        record += 1
        corrupt = f"{path}: corrupt TensorBoard event file (record {record} at byte {at} fails its checksum)"
        end = len(data)  # (a record cut short in its length)
        if at + 12 <= len(data):
            length, length_crc = struct.unpack_from("<QI", data, at)
            if masked_crc32c(data[at : at + 8]) != length_crc:
                raise ResultsError(corrupt)
            end = at + 12 + length
        if end + 4 > len(data):
            raise ResultsError(
                f"{path}: truncated TensorBoard event file (its last record is cut short at byte "
                f"{len(data)}): an incomplete copy, or a run still writing"
            )
        if masked_crc32c(data[at + 12 : end]) != struct.unpack_from("<I", data, end)[0]:
            raise ResultsError(corrupt)
        at = end + 4


def _rolling(steps, values, walls) -> pd.DataFrame:
    """Per-episode returns as SB3 logs them: the mean of the last ``WINDOW`` episodes after each
    episode, thinned to at most ``MAX_POINTS`` points (the last one always kept). Episodes that end
    in the same vector step share its step (CleanRL logs each at the global step): the step keeps
    the mean after the last of them."""
    values, steps = np.asarray(values, float), np.asarray(steps, float)
    mean = pd.Series(values).rolling(WINDOW, min_periods=1).mean().to_numpy()
    n = np.minimum(np.arange(1, len(values) + 1), WINDOW)
    last_of_step = np.r_[steps[1:] != steps[:-1], True]  # steps are sorted
    index = np.flatnonzero(last_of_step)
    pick = np.unique(np.r_[np.linspace(0, len(index) - 1, min(MAX_POINTS, len(index))).astype(int)])
    keep = index[pick]
    return pd.DataFrame({"step": np.asarray(steps, float)[keep], "value": mean[keep],
                         "wall_time": np.asarray(walls, float)[keep], "n": n[keep]})  # fmt: skip


def read_tensorboard(path: Path, tag: str | None = None) -> ImportedRun:
    """One TensorBoard event file as a run: the first of ``TB_TAGS`` it holds (or ``tag``)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # pragma: no cover - a dependency of bench
        raise ResultsError("reading TensorBoard files needs the tensorboard package") from None
    data = _read(path)
    _check_records(path, data)
    if _utf8(path) != str(path):
        raise ResultsError(f"{path}: tensorboard cannot open a path that is not UTF-8 text; rename it")
    acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
    try:
        acc.Reload()
    except Exception as e:  # noqa: BLE001 - a corrupt file: one message
        raise ResultsError(f"{path}: not a readable TensorBoard event file ({e})") from None
    tags = acc.Tags().get("scalars", [])
    wanted = [tag] if tag else list(TB_TAGS)
    found = next((t for t in wanted if t in tags), None)
    if found is None:
        shown = ", ".join(tags[:8]) or "none"
        raise ResultsError(
            f"{path}: no scalar tag {' or '.join(wanted)} (its scalars: {shown}); choose one with --tag"
        )
    writer, protocol, per_episode, temperature = TB_TAGS.get(
        found, ("TensorBoard", f"TensorBoard tag {found}", False, 1.0)
    )
    events = acc.Scalars(found)
    if not events:
        raise ResultsError(f"{path}: tag {found} has no values")
    steps = np.array([e.step for e in events], float)
    values = np.array([e.value for e in events], float)
    walls = np.array([e.wall_time for e in events], float)
    # the clock starts when the writer opened the file (its first record), not at the first episode's
    # end, and the run lasts to the writer's last record of any tag (a script logs losses and speed
    # after its last episode): otherwise wall time and env-steps/s would leave out the time before
    # the first and after the last episode
    start = min(_first_timestamp(acc, walls.min()), walls.min())
    end = max([walls.max(), *(series[-1].wall_time for series in map(acc.Scalars, tags) if series)])
    walls -= start
    finite = np.isfinite(values)
    if not finite.any():
        raise ResultsError(f"{path}: tag {found} has no finite values ({len(values)} NaN or infinite)")
    steps, values, walls = steps[finite], values[finite], walls[finite]
    order = np.argsort(steps, kind="stable")
    steps, values, walls = steps[order], values[order], walls[order]
    if per_episode:
        points = _rolling(steps, values, walls)
    else:
        points = pd.DataFrame({"step": steps, "value": values, "wall_time": walls, "n": 0})
        points = points.drop_duplicates("step", keep="last")
    digest = hashlib.sha256(data).hexdigest()[:16]
    return ImportedRun(path, writer, protocol, temperature, points, digest, int((~finite).sum()), end - start)


def _first_timestamp(acc, default: float) -> float:
    try:
        return float(acc.FirstEventTimestamp())
    except ValueError:  # no event with a time (cannot happen once a scalar was read)
        return default


def _float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _monitor_table(path: Path) -> pd.DataFrame:
    """One Monitor file's episodes: columns r, l, t as floats. A ResultsError names the first line
    that is not an episode: fields missing or extra, r not a number, l not a positive integer, t
    not a finite number of seconds. NaN or infinite returns are kept (``read_monitor`` drops
    them)."""
    first, _, rest = _read(path).decode("utf-8", errors="replace").partition("\n")
    if not first.startswith("#"):
        raise ResultsError(f"{path}: not an SB3 Monitor file (no '#{{...}}' first line)")
    reader = csv.reader(io.StringIO(rest))
    header = next(reader, [])
    if not {"r", "l", "t"} <= set(header):
        raise ResultsError(f"{path}: not an SB3 Monitor file (columns r, l, t expected)")
    columns = [header.index(c) for c in ("r", "l", "t")]
    episodes = []
    try:
        for record in reader:
            if not record:
                continue
            where = f"{path}: line {reader.line_num + 1}"  # the '#{...}' line comes first
            if len(record) != len(header):
                fields = f"{len(record)} field{'s' if len(record) != 1 else ''}"
                raise ResultsError(f"{where}: {fields} where the header has {len(header)}")
            cells = [record[i] for i in columns]
            value, length, seconds = map(_float, cells)
            if value is None:
                raise ResultsError(f"{where}: r {cells[0][:40]!r} is not a number")
            if length is None or not (length >= 1 and length % 1 == 0):
                what = "is not an episode length (a positive integer)"
                raise ResultsError(f"{where}: l {cells[1][:40]!r} {what}")
            if seconds is None or not math.isfinite(seconds):
                raise ResultsError(f"{where}: t {cells[2][:40]!r} is not a time in seconds")
            episodes.append((value, length, seconds))
    except csv.Error as e:
        raise ResultsError(f"{path}: line {reader.line_num + 1}: {e}") from None
    return pd.DataFrame(episodes, columns=["r", "l", "t"], dtype=float)


def read_monitor(paths: list[Path]) -> ImportedRun:
    """SB3 ``Monitor`` files of one run (a ``#{json}`` line, then columns r, l, t: return, length
    and seconds since the start of each finished episode; a vectorised env writes one file per
    env into one folder) as a run: the episodes of all files in the order they ended, as SB3's
    ``load_results`` reads them, and the running mean of the last ``WINDOW`` returns against
    cumulative env steps. Episodes with a NaN or infinite return are left out of the mean (their
    steps still count)."""
    table = pd.concat([_monitor_table(p) for p in paths], ignore_index=True).sort_values("t", kind="stable")
    where = paths[0] if len(paths) == 1 else paths[0].parent
    if table.empty:
        raise ResultsError(f"{where}: no finished episodes")
    steps = table.l.cumsum().to_numpy()
    returns = table.r.to_numpy()
    finite = np.isfinite(returns)
    if not finite.any():
        raise ResultsError(f"{where}: no finite episode returns ({len(returns)} NaN or infinite)")
    points = _rolling(steps[finite], returns[finite], table.t.to_numpy()[finite])
    digest = hashlib.sha256(b"".join(_read(p) for p in sorted(paths))).hexdigest()[:16]
    return ImportedRun(where, "SB3 Monitor", TRAINING_RETURN, 1.0, points, digest, int((~finite).sum()))


def discover(paths: list[Path]) -> list[Path]:
    """The files to import: the paths given, folders searched for event and Monitor files."""
    out = []
    for p in paths:
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and (f.name.startswith("events.out.tfevents") or f.name.endswith("monitor.csv"))
            )
            if not found:
                raise ResultsError(f"{p}: no TensorBoard event files or Monitor files in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise ResultsError(f"{p}: no such file or folder")
    return out


def is_bench_export(path: Path) -> bool:
    return path.suffix == ".csv" and not path.name.endswith("monitor.csv")


def _refuse_duplicates(files: list[Path]) -> None:
    """Raises a ResultsError when two of ``files`` hold the same bytes: one run given twice (under
    two names, or by itself and in its folder) would count as two seeds."""
    seen: dict[str, Path] = {}
    for f in files:
        first = seen.setdefault(hashlib.sha256(_read(f)).hexdigest(), f)
        if first is not f:
            if first.resolve() == f.resolve():
                raise ResultsError(f"{f}: given twice")
            raise ResultsError(f"{first} and {f}: the same content (one run given twice); import each once")


def import_runs(paths: list[Path], task: str, algorithm: str, suite: str, source: str | None = None,
                tag: str | None = None, seeds: list[int] | None = None
                ) -> tuple[pd.DataFrame, dict[str, int]]:  # fmt: skip
    """The runs in ``paths`` as one table in `bench export` format with ``protocol`` and
    ``source`` columns: seeds 0, 1, … in file order (or ``seeds``), run keys from the files'
    contents. Bench exports among them pass through with protocol ``bench evaluation``. One event
    file is one run; the Monitor files of one folder are one run. Also returns the number of NaN
    or infinite values left out of each run (by run key; runs without any are not listed). The
    table is checked as `bench report` and `bench leaderboard` will read it."""
    for option, value in (("--algorithm", algorithm), ("--suite", suite), ("--source", source)):
        if value is not None and "\x00" in value:  # a CSV with a NUL byte is read back by nothing
            raise ResultsError(f"{option} {value!r} contains a NUL character: give printable text")
    files = discover(paths)
    _refuse_duplicates(files)
    # one run per event file; the Monitor files of one folder are one run (one file per env)
    foreign: list = [f for f in files if not is_bench_export(f) and not f.name.endswith("monitor.csv")]
    monitors: dict[Path, list[Path]] = {}
    for f in files:
        if f.name.endswith("monitor.csv"):
            monitors.setdefault(f.parent, []).append(f)
    foreign += [sorted(group) for _, group in sorted(monitors.items())]
    if seeds is not None and len(seeds) != len(foreign):
        raise ResultsError(f"--seeds gives {len(seeds)} seeds for {len(foreign)} imported runs")
    frames = []
    for f in files:
        if is_bench_export(f):
            table = check_tidy(read_csv_text(f), str(f))
            table["protocol"] = table["protocol"] if "protocol" in table else BENCH_PROTOCOL
            default = source or f"bench export {_utf8(f.name)}"
            table["source"] = table["source"] if "source" in table else default
            frames.append(table)
    dropped = {}
    for i, group in enumerate(foreign):
        run = read_monitor(group) if isinstance(group, list) else read_tensorboard(group, tag)
        frames.append(_tidy(run, task, algorithm, suite, source, seeds[i] if seeds else i))
        if run.dropped:
            dropped[frames[-1].run_key.iloc[0]] = run.dropped
    if not frames:
        raise ResultsError("nothing to import")
    table = pd.concat(frames, ignore_index=True)
    check_tidy(table, "the table to write")  # e.g. two exports that hold the same run
    return table, dropped


def _tidy(
    run: ImportedRun, task: str, algorithm: str, suite: str, source: str | None, seed: int
) -> pd.DataFrame:
    p = run.points
    ident = dict(
        run_key=f"imported-{run.digest}",
        suite=suite,
        suite_version="imported",
        task=task,
        algorithm=algorithm,
        algo="imported",
        seed=seed,
        status="done",
        protocol=run.protocol,
        source=source or f"{run.writer}: {_utf8(run.path.name)}",
    )
    ev = pd.DataFrame(
        {
            **ident,
            "kind": "eval",
            "step": p.step,
            "wall_time": p.wall_time,
            "train_time": p.wall_time,
            "temperature": run.temperature,
            "metric": "eval/return",
            "value": p.value,
            "n": p.n,
        }
    )
    last = p.iloc[-1]
    seconds = last.wall_time if run.duration is None else max(run.duration, last.wall_time)
    summary = pd.DataFrame(
        [
            {
                **ident,
                "kind": "run",
                "step": last.step,
                "wall_time": seconds,
                "train_time": seconds,
                "temperature": np.nan,
                "metric": metric,
                "value": value,
                "n": np.nan,
            }
            for metric, value in [
                ("run/wall_time", seconds),
                ("run/train_time", seconds),
                ("run/env_steps", last.step),
            ]
        ]
    )
    return pd.concat([ev, summary], ignore_index=True)


def describe(table: pd.DataFrame, dropped: dict[str, int]) -> str:
    """One line per imported run, as echoed to a terminal: its source, protocol, number of points
    and the NaN or infinite values left out of it (``dropped``, by run key)."""
    runs = table[table.kind == "eval"].groupby("run_key")
    lines = []
    for key, g in runs:
        n = dropped.get(key, 0)
        note = f" (dropped {n} non-finite value{'s' if n != 1 else ''})" if n else ""
        run = f"{g.algorithm.iloc[0]} seed {g.seed.iloc[0]}"
        points = f"{len(g)} points to step {g.step.max():,.0f}{note}"
        lines.append(shown(f"  {run}: {points}; {g.source.iloc[0]}; protocol: {g.protocol.iloc[0]}"))
    return "\n".join(lines)
