"""The project's PPO with SB3's settings (`value_loss: mse`, early stopping before the step) takes
the same update as stable-baselines3's ``PPO.train`` from the same weights, rollout and minibatch
order: parameters equal within 1e-5 after one update of 20 epochs."""

import numpy as np
import pytest
import torch

from bench.algos import ppo
from bench.control.policies import ActorCritic

pytest.importorskip("stable_baselines3")

# the rl-zoo CartPole hyperparameters, as suites/speed-vs-sb3.yaml gives them to `ppo-sb3-settings`
SETTINGS = dict(n_envs=8, n_steps=32, batch_size=256, n_epochs=20, lr=1e-3, gamma=0.98, gae_lambda=0.8,
                clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, value_loss="mse")  # fmt: skip


def _sb3_model(target_kl=None, batch_size=256):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CartPole-v1", n_envs=8, seed=0)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=batch_size, n_epochs=20, learning_rate=1e-3,
               gamma=0.98, gae_lambda=0.8, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
               target_kl=target_kl, seed=0, device="cpu", verbose=0)  # fmt: skip


def _copy_weights(sb3_policy, model: ActorCritic) -> None:
    """SB3's separate policy / value MLPs (mlp_extractor + action_net / value_net) into ours."""
    with torch.no_grad():
        for ours, theirs in _pairs(sb3_policy, model):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)


def _pairs(sb3_policy, model: ActorCritic):
    """(our layer, SB3's layer) of the policy and value MLPs."""
    ex = sb3_policy.mlp_extractor
    return [
        (model.pi[0], ex.policy_net[0]), (model.pi[2], ex.policy_net[2]),
        (model.pi[4], sb3_policy.action_net),
        (model.vf[0], ex.value_net[0]), (model.vf[2], ex.value_net[2]), (model.vf[4], sb3_policy.value_net),
    ]  # fmt: skip


def _one_update(target_kl=None, batch_size=256):
    from stable_baselines3.common.buffers import RolloutBuffer

    sb3 = _sb3_model(target_kl, batch_size)
    _, callback = sb3._setup_learn(256, None)
    sb3.collect_rollouts(sb3.env, callback, sb3.rollout_buffer, n_rollout_steps=sb3.n_steps)
    buf = sb3.rollout_buffer

    model = ActorCritic(4, 2, False, (64, 64), "tanh", True)
    _copy_weights(sb3.policy, model)

    def flat(a):  # SB3's order: env-major
        return torch.as_tensor(RolloutBuffer.swap_and_flatten(a)).float()

    with torch.no_grad():
        old_params = model.policy(flat(buf.observations))
    vec = lambda a: flat(a).flatten()  # noqa: E731  per-step quantities: [T*N]
    batch = ppo.Batch(flat(buf.observations), vec(buf.actions).long(), vec(buf.log_probs), old_params,
                      vec(buf.values), vec(buf.advantages), vec(buf.returns))  # fmt: skip
    cfg = ppo.PPOConfig(**{**SETTINGS, "batch_size": batch_size, "target_kl": target_kl})
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters, lr=cfg.lr, eps=1e-5, fused=True)

    np.random.seed(123)  # SB3's RolloutBuffer.get draws one permutation per epoch from NumPy
    orders = [np.random.permutation(256) for _ in range(cfg.n_epochs)]
    np.random.seed(123)
    sb3.train()
    stats = ppo.update(ppo.PPOHead(model), optimizer, parameters, batch, cfg, 0.2, 1.0, iter(orders))
    return sb3, model, stats


def _max_abs_diff(sb3, model) -> float:
    return max(
        max(float((o.weight - t.weight).detach().abs().max()), float((o.bias - t.bias).detach().abs().max()))
        for o, t in _pairs(sb3.policy, model)
    )


def test_one_update_with_sb3_settings_equals_sb3_ppo_train():
    sb3, model, stats = _one_update()
    assert len(stats["pg"]) == 20  # 20 epochs of one 256-sample minibatch each
    diff = _max_abs_diff(sb3, model)
    assert diff < 1e-5, diff
    print(f"max abs parameter difference after one update: {diff:.2e}")


def test_early_stopping_before_the_step_equals_sb3():
    """With target_kl, both stop before the step whose approximate KL exceeds 1.5 x target_kl:
    the same number of optimizer steps and the same parameters."""
    sb3, model, stats = _one_update(target_kl=0.002, batch_size=64)
    steps = len(stats["pg"])
    assert 0 < steps < 20 * 4  # stopped early, after at least one step
    assert sb3._n_updates == steps // 4 + 1  # SB3 counts the epochs begun: it stopped in the same one
    assert _max_abs_diff(sb3, model) < 1e-5


def test_value_losses_by_hand():
    from bench.algos import losses

    v, old, ret = torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5]), torch.tensor([2.0, 0.0])
    # ppo2: 0.5 mean(max((v - R)^2, (clip(v) - R)^2)) with clip 1: clipped v = [1.0, 1.5]
    assert float(losses.value_loss(v, old, ret, 1.0)) == pytest.approx(0.5 * (1.0 + 9.0) / 2)
    # mse (SB3): mean((clip(v) - R)^2), no max, no half
    assert float(losses.mse_value_loss(v, old, ret, 1.0)) == pytest.approx((1.0 + 2.25) / 2)
    assert float(losses.mse_value_loss(v, old, ret, None)) == pytest.approx((1.0 + 9.0) / 2)


def test_linear_schedules_take_sb3s_values_at_each_update(monkeypatch):
    """Linear learning-rate and clip-range schedules: SB3's ``OnPolicyAlgorithm.learn`` counts a
    rollout's steps (``collect_rollouts``) before it computes the progress remaining that ``train``
    reads, so the first update already uses 1 − n_envs·n_steps / budget of the initial values. The
    project's PPO reads its progress at the same point: the learning rate and clip range of each
    of the first 3 updates equal SB3's (no episode ends in those 4 x 6 CartPole steps, so both
    count the same steps)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from bench.control.tasks import get_task
    from bench.evaluation import Evaluator
    from bench.recorder import Recorder

    n_envs, n_steps, budget, lr, clip = 4, 2, 80, 1e-3, 0.2
    theirs: list[tuple[float, float]] = []

    class RecordingPPO(PPO):
        def train(self) -> None:
            super().train()  # sets the optimizer's lr and logs the clip range it used
            theirs.append(
                (self.policy.optimizer.param_groups[0]["lr"], self.logger.name_to_value["train/clip_range"])
            )

    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=0)
    RecordingPPO("MlpPolicy", env, n_steps=n_steps, batch_size=n_envs * n_steps, n_epochs=1,
                 learning_rate=lambda progress: progress * lr, clip_range=lambda progress: progress * clip,
                 seed=0, device="cpu", verbose=0).learn(budget)  # fmt: skip

    ours: list[tuple[float, float]] = []
    update = ppo.update

    def recording_update(head, optimizer, parameters, batch, cfg, clip_range, *args, **kwargs):
        ours.append((optimizer.param_groups[0]["lr"], clip_range))
        return update(head, optimizer, parameters, batch, cfg, clip_range, *args, **kwargs)

    monkeypatch.setattr(ppo, "update", recording_update)
    cfg = ppo.PPOConfig(n_envs=n_envs, n_steps=n_steps, batch_size=n_envs * n_steps, n_epochs=1, lr=lr,
                        lr_schedule="linear", clip_range=clip, clip_schedule="linear")  # fmt: skip
    rec = Recorder()
    task = get_task("CartPole-v1")
    ppo.train(task, cfg, budget, 0, Evaluator(task, rec, 0, 10**9, 1, [0.0]), rec)

    lr_curve = [(s, v) for s, _, m, v in rec.curves if m == "train/lr"]
    assert [s for s, _ in lr_curve[:3]] == [8, 16, 24]  # no autoreset step yet: SB3's step counts
    assert len(theirs) == budget // (n_envs * n_steps) and len(ours) >= 3
    expected = [((1 - k * 8 / budget) * lr, (1 - k * 8 / budget) * clip) for k in (1, 2, 3)]
    np.testing.assert_allclose(theirs[:3], expected, rtol=1e-12)  # SB3: 9e-4, 8e-4, 7e-4 (x 200 for the clip)
    np.testing.assert_allclose(ours[:3], theirs[:3], rtol=1e-12, atol=0)
    np.testing.assert_allclose([v for _, v in lr_curve[:3]], [lr_ for lr_, _ in theirs[:3]], rtol=1e-12)
