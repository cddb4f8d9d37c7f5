"""Seed-batched training: S runs that differ only in their seed, trained in lockstep in one process.

At bench's network sizes (two 64-unit MLPs) a PPO step on CPU costs mostly per-operation overhead,
not arithmetic, so one batched matrix product over S seeds' weights costs little more than one
over a single seed's. Here every seed keeps everything that makes it its own run — its env, its
observation and return scaling, its exploration noise, its minibatch shuffles, its optimizer,
its evaluator and its recorder — and only the networks' arithmetic is batched:

* every parameter of the S actor-critics is one stacked tensor ``[S, ...]``; each seed's
  ``ActorCritic`` keeps its own ``nn.Parameter`` objects, whose storage is that seed's row of the
  stack, so its own Adam (``fused=True``, as unbatched PPO) updates the stack in place, and
  evaluation uses the seed's module as it is;
* a rollout runs the S policies in one call per env step (``torch.baddbmm`` over the stack; on
  CPU each seed's product is the same ``gemm`` as ``F.linear``'s, so the same floats);
* the PPO epochs run the seeds' minibatches in lockstep: minibatch m of every seed in one
  forward/backward pass (the per-seed loss is a row of a ``[S]`` vector, whose sum's gradient is
  each seed's own), then each seed's gradient clipping and Adam step. Seeds whose rollouts have
  fewer valid steps (autoreset steps differ) have fewer or shorter minibatches: a step with mixed
  sizes runs one pass per size; a seed that stops its epochs early (``target_kl``) takes no more
  steps and draws no more shuffles, as unbatched.

So a seed-batched run is meant to be the same computation as the unbatched run of its seed, float
for float; ``tests/unit/test_seed_batch.py`` checks it on this machine's kernels. A seed whose
losses or parameters diverge fails alone; the others go on.

Layer: algos.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bench.algos import losses, pg, ppo
from bench.algos.rollout import Agent, Shaping, build_agent
from bench.control.policies import (
    categorical_kl,
    categorical_log_prob_entropy,
    gaussian_kl,
    gaussian_log_prob_entropy,
)
from bench.control.tasks import Task
from bench.evaluation import Evaluator
from bench.recorder import Recorder


class StackedActorCritic:
    """The parameters of S ``ActorCritic`` modules of one architecture as stacked tensors, each
    module's parameters rebound to views of its row (so updating a module updates the stack)."""

    def __init__(self, models: Sequence[torch.nn.Module]):
        self.models = list(models)
        first = self.models[0]
        self.continuous, self._act_fn = first.continuous, first._act_fn
        names = [name for name, _ in first.named_parameters()]
        self.stacked: dict[str, torch.Tensor] = {}
        for name in names:
            rows = [dict(m.named_parameters())[name].detach() for m in self.models]
            self.stacked[name] = torch.stack(rows).requires_grad_(True)
        for i, m in enumerate(self.models):
            for name in names:
                module_name, _, attr = name.rpartition(".")
                owner = m.get_submodule(module_name) if module_name else m
                setattr(owner, attr, torch.nn.Parameter(self.stacked[name].detach()[i]))
        self._named = [[(name, dict(m.named_parameters())[name]) for name in names] for m in self.models]
        self._index: dict[tuple[int, ...], torch.Tensor] = {}
        self._layers = {  # (weight, bias) names of each MLP's linear layers
            which: [(f"{which}.{j}.weight", f"{which}.{j}.bias")
                    for j, layer in enumerate(getattr(first, which)) if isinstance(layer, torch.nn.Linear)]
            for which in ("pi", "vf")
        }  # fmt: skip

    def rows(self, name: str, members: Sequence[int] | None) -> torch.Tensor:
        """Parameter ``name`` of ``members`` (all seeds: the stack itself)."""
        full = self.stacked[name]
        if members is None or len(members) == len(self.models):
            return full
        key = tuple(members)
        if key not in self._index:
            self._index[key] = torch.as_tensor(key)
        return full[self._index[key]]

    def _mlp(self, which: str, x: torch.Tensor, members) -> torch.Tensor:
        return _mlp(
            self._act_fn, [(self.rows(w, members), self.rows(b, members)) for w, b in self._layers[which]], x
        )

    def policy(self, obs: torch.Tensor, members=None) -> torch.Tensor:
        """Distribution parameters [k, B, A] of ``members`` (k of them) at ``obs`` [k, B, d]."""
        return self._mlp("pi", obs, members)

    def value(self, obs: torch.Tensor, members=None) -> torch.Tensor:
        return self._mlp("vf", obs, members).squeeze(-1)

    def log_std(self, members=None) -> torch.Tensor:
        return self.rows("log_std", members).unsqueeze(1)  # [k, 1, D]

    def head(self, obs: torch.Tensor, actions: torch.Tensor, members=None, log_std=None):
        """``ppo.PPOHead`` for k seeds: (params, values, log pi(a|s), entropy), each [k, B, ...].
        ``log_std``: ``self.log_std(members)``, passed when the caller uses it again (the KL
        penalty), so that its gradient is summed in one place, in the order of unbatched PPO."""
        params, values = self.policy(obs, members), self.value(obs, members)
        if not self.continuous:
            logp, entropy = categorical_log_prob_entropy(params, actions)
            return params, values, logp, entropy
        log_std = self.log_std(members) if log_std is None else log_std
        logp, entropy = gaussian_log_prob_entropy(params, log_std, actions)
        return params, values, logp, entropy

    def kl(self, old_params, new_params, old_log_std, new_log_std=None) -> torch.Tensor:
        """Exact KL(pi_old || pi_new) per state [k, B] (Gaussian: ``new_log_std`` [k, 1, D])."""
        if not self.continuous:
            return categorical_kl(old_params, new_params)
        return gaussian_kl(old_params, old_log_std, new_params, new_log_std)

    def grads_to_models(self, members: Sequence[int], take: Sequence[int]) -> None:
        """After a backward pass over ``members``: each seed in ``take`` gets its row of the stacked
        gradients as its parameters' ``.grad`` (views); the others get none (no optimizer step)."""
        for i in members:
            for name, p in self._named[i]:
                p.grad = self.stacked[name].grad[i] if i in take else None  # the stack's row i

    def zero_grad(self) -> None:
        for t in self.stacked.values():
            t.grad = None


def ppo_train(
    task: Task,
    cfg: ppo.PPOConfig,
    env_steps: int,
    seeds: Sequence[int],
    evaluators: Sequence[Evaluator],
    recorders: Sequence[Recorder],
    agents: Sequence[Agent] | None = None,
    shapings: Sequence[Shaping | None] | None = None,
) -> list[Agent | BaseException]:
    """``ppo.train`` for each of ``seeds`` in lockstep (no workers). Returns per seed its agent,
    or the exception that stopped it (a diverged seed fails alone). ``agents`` / ``shapings``: per
    seed, as ``ppo.train``'s (the alignment methods' fine-tuning from π_ref); the epochs run in
    lockstep where no shaping adds a policy-loss term, else each seed's own ``ppo.update``."""
    agents, shapings, stack = _start(task, cfg, seeds, recorders, agents, shapings)
    rngs = [np.random.default_rng(seed) for seed in seeds]
    optimizers = [
        torch.optim.Adam(list(a.model.parameters()), lr=cfg.lr, eps=1e-5, fused=True) for a in agents
    ]
    betas = [cfg.kl_beta] * len(seeds)

    def learn(rollouts: dict) -> dict[int, BaseException]:
        failed, prepared = {}, {}
        for i, ro in rollouts.items():
            try:
                steps = agents[i].collector.env_steps
                batch, idx, lr, clip, ret = ppo.prepare(
                    task, cfg, ro, agents[i].model, steps, env_steps, optimizers[i], shapings[i]
                )
            except Exception as e:  # noqa: BLE001  the seed's run fails; the batch goes on
                failed[i] = e
                continue
            orders = ppo._epoch_orders(rngs[i], idx, len(idx), cfg.n_epochs)
            prepared[i] = (steps, batch, idx, lr, clip, ret, orders, ro)
        if all(s is None or not s.adds_policy_loss() for s in shapings):
            field = lambda k: {i: p[k] for i, p in prepared.items()}  # noqa: E731
            stats = update(stack, optimizers, field(1), cfg, field(4), betas, field(6))
        else:  # a loss term of the shaping's: each seed's own epochs (its rollout was batched)
            stats = {}
            for i, (_, batch, _, _, clip, _, orders, _) in prepared.items():
                model = agents[i].model
                stats[i] = ppo.update(ppo.PPOHead(model), optimizers[i], list(model.parameters()), batch, cfg,
                                      clip, betas[i], orders, None, shapings[i])  # fmt: skip
        for i, (steps, batch, idx, lr, _, ret, _, ro) in prepared.items():
            try:
                betas[i] = ppo.after_update(task, cfg, agents[i], stats[i], steps, batch, idx, ro, ret, lr,
                                            betas[i], evaluators[i], recorders[i])  # fmt: skip
            except Exception as e:  # noqa: BLE001
                failed[i] = e
        return failed

    return _on_policy(stack, agents, evaluators, env_steps, cfg.n_steps, learn)


def pg_train(
    task: Task,
    cfg: pg.PGConfig,
    env_steps: int,
    seeds: Sequence[int],
    evaluators: Sequence[Evaluator],
    recorders: Sequence[Recorder],
    agents: Sequence[Agent] | None = None,
    shapings: Sequence[Shaping | None] | None = None,
) -> list[Agent | BaseException]:
    """``pg.train`` for each of ``seeds`` in lockstep: the rollouts batched, each seed's gradient
    step its own (a full batch of each seed's valid steps: their counts differ by the autoreset
    steps, so there is nothing to stack)."""
    agents, shapings, stack = _start(task, cfg, seeds, recorders, agents, shapings)
    optimizers = [pg.make_optimizer(a.model, cfg) for a in agents]

    def learn(rollouts: dict) -> dict[int, BaseException]:
        failed = {}
        for i, ro in rollouts.items():
            try:
                pg.learn(
                    cfg, agents[i], optimizers[i], ro, env_steps, evaluators[i], recorders[i], shapings[i]
                )
            except Exception as e:  # noqa: BLE001  the seed's run fails; the batch goes on
                failed[i] = e
        return failed

    return _on_policy(stack, agents, evaluators, env_steps, cfg.n_steps, learn)


def _start(task: Task, cfg, seeds, recorders, agents, shapings):
    """Each seed's agent (fresh, or as given) and shaping (none, or as given), and their stack."""
    agents = list(agents or [build_agent(task, cfg, s, r) for s, r in zip(seeds, recorders, strict=True)])
    shapings = list(shapings or [None] * len(seeds))
    return agents, shapings, StackedActorCritic([a.model for a in agents])


def _on_policy(stack, agents, evaluators, env_steps: int, n_steps: int, learn) -> list[Agent | BaseException]:
    """The loop of an on-policy method over seeds: one batched rollout of every running seed, then
    ``learn({seed index: rollout}) -> {seed index: exception}``; a seed ends at its budget or its
    evaluator's stop (final evaluation), or fails alone."""
    outcome: list[Agent | BaseException | None] = [None] * len(agents)
    active = list(range(len(agents)))
    while active:
        ros = collect(stack, [agents[i] for i in active], active, n_steps)
        failed = learn(dict(zip(active, ros, strict=True)))
        still = []
        for i in active:
            agent = agents[i]
            if i in failed:
                outcome[i] = failed[i]
                agent.env.close()
            elif agent.collector.env_steps < env_steps and not evaluators[i].stop:
                still.append(i)
            else:
                evaluators[i].final(agent.collector.env_steps, agent.act)
                agent.env.close()
                outcome[i] = agent
        active = still
    return outcome  # type: ignore[return-value]


@torch.no_grad()
def collect(stack: StackedActorCritic, agents: Sequence[Agent], members: Sequence[int], num_steps: int):
    """One rollout of each agent's collector, the policies of ``members`` run in one call per step."""
    cols = [a.collector for a in agents]
    for c in cols:
        c.begin(num_steps)
    weights = _frozen(stack, members)
    for _ in range(num_steps):
        params = _mlp(stack._act_fn, weights["pi"], torch.stack([c.observe() for c in cols]))
        for c, p in zip(cols, params, strict=True):
            c.act(p)
    obs = torch.stack([c.end() for c in cols])  # [k, T + 1, N, d]
    values = _mlp(stack._act_fn, weights["vf"], obs.flatten(1, 2)).squeeze(-1)
    return [c.rollout(v, a.model.log_prob) for c, v, a in zip(cols, values, agents, strict=True)]


def _frozen(stack: StackedActorCritic, members) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """The weights of ``members`` for a rollout (fixed while it runs): stacked once, not per step."""
    return {which: [(stack.rows(w, members).detach(), stack.rows(b, members).detach())
                    for w, b in stack._layers[which]] for which in ("pi", "vf")}  # fmt: skip


def _mlp(act_fn, layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """k MLPs at once: ``x`` [k, B, in], ``layers`` of (weight [k, out, in], bias [k, out])."""
    for j, (w, b) in enumerate(layers):
        if _batched_equals_linear(x.shape[0], x.shape[1], w.shape[2], w.shape[1]):
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        else:
            x = torch.stack([F.linear(x[i], w[i], b[i]) for i in range(len(w))])
        if j < len(layers) - 1:
            x = act_fn(x)
    return x


_PROBED: dict[tuple[int, int, int, int], bool] = {}


def _batched_equals_linear(k: int, rows: int, n_in: int, n_out: int) -> bool:
    """Whether a batched matrix product gives each seed exactly ``F.linear``'s floats — output and
    gradients — at this shape, on this machine's kernels (probed once per shape with random data).
    Where it does not (here: a single output, which ``F.linear`` computes as a matrix-vector
    product, and one to three rows), the layer runs per seed."""
    key = (k, rows, n_in, n_out)
    if key not in _PROBED:
        _PROBED[key] = _probe(k, rows, n_in, n_out)
    return _PROBED[key]


@torch.enable_grad()
def _probe(k: int, rows: int, n_in: int, n_out: int) -> bool:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(k, n_out, n_in, generator=g, requires_grad=True)
    b = torch.randn(k, n_out, generator=g, requires_grad=True)
    x = torch.randn(k, rows, n_in, generator=g, requires_grad=True)
    each = torch.stack([F.linear(x[i], w[i], b[i]) for i in range(k)])
    batched = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
    if not torch.equal(each, batched):
        return False
    up = torch.randn(each.shape, generator=g)
    grads = zip(
        torch.autograd.grad(each, (w, x, b), up), torch.autograd.grad(batched, (w, x, b), up), strict=True
    )
    return all(torch.equal(a, c) for a, c in grads)


def update(stack: StackedActorCritic, optimizers, batches: dict[int, ppo.Batch], cfg: ppo.PPOConfig,
           clips: dict[int, float], betas: Sequence[float], orders: dict) -> dict[int, dict]:  # fmt: skip
    """``ppo.update`` for several seeds in lockstep (plain PPO: no shaping, no workers); returns
    each seed's per-minibatch statistics."""
    stats = {i: {k: [] for k in ("pg", "vf", "ent", "kl", "clipfrac")} for i in batches}
    vf_fn = losses.VALUE_LOSSES[cfg.value_loss]
    bs = cfg.batch_size
    running = list(batches)
    for _ in range(cfg.n_epochs):
        if not running:
            break
        epoch = {i: next(orders[i]) for i in running}
        n_minibatches = max(-(-len(o) // bs) for o in epoch.values())
        for m in range(n_minibatches):
            groups: dict[int, list[int]] = defaultdict(list)
            for i in running:
                size = len(epoch[i][m * bs : (m + 1) * bs])
                if size:
                    groups[size].append(i)
            for members in groups.values():
                mbs = {i: torch.from_numpy(epoch[i][m * bs : (m + 1) * bs]) for i in members}
                stopped = _minibatch_step(stack, optimizers, batches, cfg, clips, betas, members, mbs, stats,
                                          vf_fn)  # fmt: skip
                running = [i for i in running if i not in stopped]
    return stats


def _minibatch_step(stack, optimizers, batches, cfg, clips, betas, members, mbs, stats, vf_fn) -> set[int]:
    """One minibatch of each of ``members`` (equal sizes) in one forward/backward pass, then each
    seed's clipped Adam step. Returns the seeds that stop their epochs here (``target_kl``)."""

    def take(field: str) -> torch.Tensor:
        rows = [getattr(batches[i], field)[mbs[i]] for i in members]
        return rows[0].unsqueeze(0) if len(rows) == 1 else torch.stack(rows)

    obs, actions, old_logp = take("obs"), take("actions"), take("old_logp")
    alone = len(members) == 1  # the seed's own module, as unbatched PPO runs it (no stack overhead)
    if alone:
        model = stack.models[members[0]]
        for _, p in stack._named[members[0]]:
            p.grad = None
        one = ppo.PPOHead(model)(obs[0], actions[0])
        params, values, logp, entropy = (x.unsqueeze(0) for x in one)

        def kl_of(old_params, old_log_std):
            return model.kl(
                old_params[0], one[0], None if old_log_std is None else old_log_std[0, 0]
            ).unsqueeze(0)

    else:
        stack.zero_grad()
        log_std = stack.log_std(members) if stack.continuous else None
        params, values, logp, entropy = stack.head(obs, actions, members, log_std)

        def kl_of(old_params, old_log_std):
            return stack.kl(old_params, params, old_log_std, log_std)

    with torch.no_grad():
        log_ratio = logp - old_logp
        approx_kl = ((log_ratio.exp() - 1) - log_ratio).mean(-1).tolist()
    stopped = set()
    if cfg.target_kl is not None:
        stopped = {i for i, kl in zip(members, approx_kl, strict=True) if kl > 1.5 * cfg.target_kl}
        for i, kl in zip(members, approx_kl, strict=True):
            if i in stopped:
                stats[i]["kl"].append(kl)
    adv = take("adv")
    if cfg.normalize_advantage and adv.shape[1] > 1:
        adv = (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + 1e-8)
    # the clip range's bounds computed in double precision, as from ppo.update's Python floats
    clip = torch.tensor([[clips[i]] for i in members])
    lo, hi = (
        torch.tensor([[1.0 - clips[i]] for i in members]),
        torch.tensor([[1.0 + clips[i]] for i in members]),
    )
    if cfg.objective == "clip":
        ratio = torch.exp(logp - old_logp)
        pg_loss = -torch.min(ratio * adv, torch.clamp(ratio, lo, hi) * adv).mean(-1)
    elif cfg.objective == "unclipped":
        pg_loss = -(torch.exp(logp - old_logp) * adv).mean(-1)
    else:
        old_log_std = (
            None if not stack.continuous else torch.stack([batches[i].old_log_std for i in members])[:, None]
        )
        kl = kl_of(take("old_params"), old_log_std)
        beta = torch.tensor([[betas[i]] for i in members])
        pg_loss = -(torch.exp(logp - old_logp) * adv - beta * kl).mean(-1)
    vf_loss = vf_fn(values, take("old_values"), take("ret"), cfg.clip_range_vf)
    loss = pg_loss + cfg.vf_coef * vf_loss - cfg.ent_coef * entropy.mean(-1)
    going = [j for j, i in enumerate(members) if i not in stopped]
    if going:
        (loss if len(going) == len(members) else loss[going]).sum().backward()
    if not alone:
        stack.grads_to_models(members, [members[j] for j in going])
    with torch.no_grad():
        clipfrac = ((log_ratio.exp() - 1).abs() > clip).float().mean(-1).tolist()
    for j in going:
        i = members[j]
        grads = [p.grad for _, p in stack._named[i] if p.grad is not None]
        losses.clip_grad_norm_(grads, cfg.max_grad_norm)
        optimizers[i].step()
        stats[i]["clipfrac"].append(clipfrac[j])
        stats[i]["pg"].append(float(pg_loss[j].detach()))
        stats[i]["vf"].append(float(vf_loss[j].detach()))
        stats[i]["ent"].append(float(entropy[j].detach().mean()))
        stats[i]["kl"].append(approx_kl[j])
    return stopped
