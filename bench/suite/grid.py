"""The grid: a validated suite -> its runs (algorithms x tasks x grid cells x seeds). A list given
for a scalar hyperparameter is a grid axis (for a list-valued one such as ``hidden_sizes``, a list
of lists is). Each cell x seed is a ``RunSpec`` whose key is a stable hash of its resolved config."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bench.algos import ALGORITHMS
from bench.fingerprint import algorithm_fingerprint, code_id, dumps
from bench.lm.tasks import LM_TASKS
from bench.pipeline.recipes import LMSetup
from bench.suite.errors import SuiteError
from bench.suite.schema import (
    PLUGIN_TIMEOUT_S,
    AlgorithmEntry,
    Evaluation,
    Steps,
    Suite,
    _is_sequence_field,
    _validation_error,
)

MAX_RUNS = 100_000  # runs of one suite (grid cells x seeds), checked before any grid is built


@dataclass(frozen=True)
class RunSpec:
    """One run: a grid cell of the suite and a seed. Frozen and hashable."""

    key: str
    suite: str
    suite_version: str
    label: str
    algo: str
    task: str
    seed: int
    env_steps: int
    config_json: str  # the algorithm's full resolved hyperparameters
    evaluation_json: str
    alignment_json: str = ""  # this task's reference + preference recipes (alignment methods)
    code_json: str = ""  # the algorithm's code fingerprint (bench.fingerprint), part of the key
    base_key: str = ""  # the key without the code fingerprint: the same run under any code version
    task_json: str = ""  # a task declared in the suite: its record, registered by the worker
    plugins: tuple[str, ...] = ()  # --plugin modules the worker imports before the run (not in the key)
    timeout_s: int | None = None  # wall-clock limit of the run (not in the key)

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(**json.loads(self.evaluation_json))

    @property
    def alignment(self) -> dict | None:
        return json.loads(self.alignment_json) if self.alignment_json else None

    @property
    def cpus(self) -> int:
        """CPU cores the run occupies: its worker processes (Distributed PPO), else one."""
        return int(self.config.get("workers", 1))

    @property
    def gpus(self) -> int:
        """GPUs the run needs: one for an LM run on ``device: cuda``, else none."""
        return int((self.alignment or {}).get("device") == "cuda")


def _axes(entry: AlgorithmEntry, task: str) -> tuple[dict[str, Any], dict[str, list]]:
    """(fixed params, grid axes) of one algorithm entry on one task."""
    algo = ALGORITHMS[entry.algo]
    base = dict(algo.task_defaults.get(task, {})) if entry.use_task_defaults else {}
    user = {**entry.params, **entry.task_params.get(task, {})}
    axes: dict[str, list] = {}
    for name, value in user.items():
        is_axis = isinstance(value, list) and (
            not _is_sequence_field(algo.config, name) or all(isinstance(v, list) for v in value)
        )
        if is_axis:
            axes[name] = value
        else:
            base[name] = value
    return base, axes


def _cell_count(entry: AlgorithmEntry, task: str) -> int:
    return math.prod(len(v) for v in _axes(entry, task)[1].values())


def _grid(path: Path, suite: Suite, i: int, entry: AlgorithmEntry, task: str):
    """Validated (label, config) cells of one algorithm entry on one task."""
    algo = ALGORITHMS[entry.algo]
    base, axes = _axes(entry, task)
    for name, values in axes.items():
        if not values:
            raise SuiteError(path, f"algorithms[{i}].params.{name}", "empty grid axis")
    if math.prod(len(v) for v in axes.values()) > MAX_RUNS:
        raise SuiteError(path, f"algorithms[{i}].params", f"the grid has more than {MAX_RUNS} cells")
    names = list(axes)
    cells = []
    for combo in itertools.product(*(axes[n] for n in names)):
        params = {**base, **dict(zip(names, combo, strict=True))}
        try:
            cfg = algo.config.model_validate(params)
        except ValidationError as e:
            origin = "task_params." + task if _from_task_params(e, entry, task) else "params"
            raise _validation_error(path, e, f"algorithms[{i}].{origin}", algo.config) from None
        label = entry.label or entry.algo
        varying = [(n, v) for n, v in zip(names, combo, strict=True) if len(axes[n]) > 1]
        if varying:
            label += "[" + ",".join(f"{n}={v}" for n, v in varying) + "]"
        cells.append((label, key_config(cfg)))
    return cells


def key_config(cfg) -> dict:
    """A validated config as run keys and stores hold it: every field, except a field marked
    ``json_schema_extra={"when_set": True}`` (one added after runs were published) while it is at its
    default — so adding such a field keeps every existing run key."""
    data = cfg.model_dump(mode="json")
    for name, f in type(cfg).model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if extra.get("when_set") and getattr(cfg, name) == f.default:
            del data[name]
    return data


def _from_task_params(err: ValidationError, entry: AlgorithmEntry, task: str) -> bool:
    try:
        loc = err.errors(include_url=False)[0]["loc"]
        return bool(loc) and loc[0] in entry.task_params.get(task, {})
    except Exception:  # noqa: BLE001
        return False


def _budget(steps: Steps, task: str, default: Steps | None = None) -> int | None:
    if isinstance(steps, dict):
        if task in steps:
            return steps[task]
        return _budget(default, task) if default is not None else None
    return steps


def _hash(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def expand(suite: Suite) -> list[RunSpec]:
    """The suite's runs: algorithms x tasks x grid cells x seeds, in a stable order."""
    path = Path(suite.path or suite.name)
    declarations = {d.id: d for d in suite.task_declarations or []}
    specs = []
    for i, entry in enumerate(suite.algorithms):
        for task in entry.tasks or suite.tasks:
            steps = _budget(entry.env_steps, task, suite.env_steps) if entry.env_steps else None
            steps = steps or _budget(suite.env_steps, task)
            if steps is None:
                raise SuiteError(path, "env_steps", f"no budget for task {task}")
            # unset optional fields stay out of the key, so adding a field keeps existing run keys
            evaluation = suite.evaluation.for_task(task).model_dump(mode="json", exclude_none=True)
            evaluation_json = json.dumps(evaluation, sort_keys=True)
            alignment = None
            if ALGORITHMS[entry.algo].aligned and suite.alignment is not None:
                alignment = suite.alignment.for_task(task)
            elif ALGORITHMS[entry.algo].domain == "lm":
                alignment = (suite.lm or LMSetup()).for_task(LM_TASKS[task])
            fingerprint = algorithm_fingerprint(ALGORITHMS[entry.algo])
            plugin = ALGORITHMS[entry.algo].origin.kind != "built-in"
            timeout = suite.run_timeout or (PLUGIN_TIMEOUT_S if plugin else None)
            declared = declarations.get(task)
            task_json = json.dumps(declared.model_dump(), sort_keys=True) if declared else ""
            for label, config in _grid(path, suite, i, entry, task):
                config_json = json.dumps(config, sort_keys=True)
                for seed in suite.seeds:
                    ident = dict(
                        suite=suite.name,
                        version=suite.version,
                        label=label,
                        algo=entry.algo,
                        task=task,
                        seed=seed,
                        env_steps=steps,
                        config=config,
                        evaluation=json.loads(evaluation_json),
                    )
                    if alignment is not None:  # absent otherwise: earlier run keys stay valid
                        ident["alignment"] = alignment
                    base_key = _hash(ident)
                    key = _hash({**ident, "code": code_id(fingerprint)})
                    specs.append(
                        RunSpec(
                            key,
                            suite.name,
                            suite.version,
                            label,
                            entry.algo,
                            task,
                            seed,
                            steps,
                            config_json,
                            evaluation_json,
                            json.dumps(alignment, sort_keys=True) if alignment is not None else "",
                            dumps(fingerprint),
                            base_key,
                            task_json,
                            (),
                            timeout,
                        )
                    )
    return specs
