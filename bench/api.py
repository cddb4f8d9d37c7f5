"""bench's public API: the one module a plugin imports.

Everything named in ``__all__`` is a contract, kept stable across minor versions and tested as
such (``tests/unit/test_api.py``); everything else in bench is private.

**Records and registration**

* ``Algorithm(name, config, task_defaults, train, description, aligned=False, domain="control",
  version="1")`` — an algorithm: its pydantic config model, per-task default parameters and train
  function; ``register_algorithm(algo)`` adds it (a clash of names is a ``PluginError``) and makes
  its config refuse keys it does not declare (``extra="forbid"`` is set on the class), so a
  misspelled parameter in a suite is an error, not a default.
* ``Task(id, reward_threshold, random_score, solved_score, continuous)`` — a gymnasium environment
  as a benchmark task, with the bounds scores are normalised by; ``register_task(task)`` adds it;
  ``random_policy_score(task)`` measures its random bound (mean return over 200 episodes).
* Entry points make an installed package's records known without an import: in its
  ``pyproject.toml``, ``[project.entry-points."bench.algorithms"] my-ppo = "mypkg.algo:MY_PPO"``
  and ``[project.entry-points."bench.tasks"] my-env = "mypkg.env:MY_TASK"``. An algorithm entry
  point names one ``Algorithm`` and its key is that algorithm's name (another key is an error); a
  task entry point's key is a label only, and it may name a list of ``Task`` records.
* An installed plugin whose entry point cannot be used is left out with one warning per command;
  ``bench list`` shows it as broken, and only what needs it (``bench describe`` of its algorithm,
  a suite naming it) stops with exit status 2.

**The train contract** — ``train(task, cfg, env_steps, seed, evaluator, recorder)``:

* train from ``seed`` for ``env_steps`` environment steps; ``cfg`` is an instance of the config
  class, validated; what ``train`` returns is ignored;
* ``recorder.steps(n)`` after each iteration (env steps so far: the progress bar and the
  throughput clock), ``recorder.curve(step, "train/...", value)`` for learning-curve points;
* ``if evaluator.due(step): evaluator(step, policy)`` — ``policy(obs, temperature) -> actions``
  gets a numpy array ``(eval_episodes, *observation_shape)`` of raw observations (the space's
  dtype) and returns a numpy array, one action per row (integers ``(n,)``, or floats
  ``(n, action_dim)`` that the evaluator clips to the action space); ``temperature`` 0 is the
  greedy or mean action (``PolicyAct`` wraps an ``ActorCritic`` for you);
* stop early when ``evaluator.stop`` is set, and end with ``evaluator.final(step, policy)``;
* raise ``Diverged`` (or call ``check_finite(step, losses=None, modules=None, unit="env step")``,
  which raises it for a NaN or infinite loss value or parameter): the run is stored ``failed`` with
  the step and the quantity;
* bench calls ``torch.manual_seed(seed)`` and ``torch.set_num_threads(1)`` in the run's process
  before ``train``; the plugin seeds everything else (its training envs, numpy, its samplers) and
  keeps to one core (or to ``workers`` cores, if its config has that field).

**Building blocks** a variant reuses: ``build_agent`` (a vectorised env, an ``ActorCritic`` and a
``RolloutCollector`` for a task and config), ``Rollout``, ``losses`` (GAE, the PPO surrogates,
value losses, schedules, preference losses), ``ppo_train`` (PPO's loop, with a ``surrogate=``
hook for the policy loss), ``PPOConfig`` and ``PPO_TASK_DEFAULTS``, ``PGConfig`` and ``pg_train``.

A PPO variant with another clipping rule is a config, a loss and three lines of train function —
see ``examples/bench-plugin-example`` and the docs' "Write your own algorithm"; the whole contract
is the docs' "The contract" (``docs/guides/plugins.md``).
"""

from __future__ import annotations

from bench.algos import losses
from bench.algos.guard import Diverged, check_finite
from bench.algos.pg import TASK_DEFAULTS as PG_TASK_DEFAULTS
from bench.algos.pg import PGConfig
from bench.algos.pg import train as pg_train
from bench.algos.ppo import TASK_DEFAULTS as PPO_TASK_DEFAULTS
from bench.algos.ppo import PPOConfig
from bench.algos.ppo import train as ppo_train
from bench.algos.rollout import Agent, Rollout, RolloutCollector, build_agent
from bench.control.policies import ActorCritic, PolicyAct
from bench.control.tasks import Task, random_policy_score
from bench.evaluation import Evaluator
from bench.recorder import Recorder
from bench.registry import Algorithm, PluginError, register_algorithm, register_task

API_VERSION = "1"

__all__ = [
    "API_VERSION",
    "PG_TASK_DEFAULTS",
    "PPO_TASK_DEFAULTS",
    "ActorCritic",
    "Agent",
    "Algorithm",
    "Diverged",
    "Evaluator",
    "PGConfig",
    "PPOConfig",
    "PluginError",
    "PolicyAct",
    "Recorder",
    "Rollout",
    "RolloutCollector",
    "Task",
    "build_agent",
    "check_finite",
    "losses",
    "pg_train",
    "ppo_train",
    "random_policy_score",
    "register_algorithm",
    "register_task",
]
