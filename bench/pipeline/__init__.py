"""The alignment pipeline: the artifacts a method starts from, built by running algorithms.

A layer of its own, between the suite reader above and the algorithms below:

* ``recipes`` — how each artifact is made (the suite's ``alignment:`` and ``lm:`` sections): pure
  data, which the suite reader validates without importing anything that trains;
* ``keys`` — the artifact cache keys: the recipe parts an artifact depends on and the code that
  builds it;
* ``control`` and ``lm`` — the builders (π_ref by the project's PPO, trajectory preferences; the
  tokenizer, π_SFT, prompts, completion preferences and the reward model) and one run's pipeline,
  which builds or loads them and is the context its method receives;
* ``calibrate`` — π_SFT against its task's band, and its builds under perturbations;
* ``context`` — the executor's one door: the context of a run.

Methods see the artifacts through the types of ``bench.artifacts``, defined below them, never
through this package. This ``__init__`` imports nothing: importing the recipes runs it.
"""
