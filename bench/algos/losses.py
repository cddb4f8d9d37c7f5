"""Pure tensor functions: return/advantage estimators and policy-gradient losses.

Shapes: T = time steps of a rollout, N = parallel envs, B = a flat minibatch.
``dones[t, n]`` is True when the episode of env n ended at step t (terminated, or truncated
with the bootstrap value already folded into ``rewards[t, n]``), so nothing flows from t+1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


def gae(
    rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16).

    rewards [T, N], values [T+1, N] (the last row bootstraps the unfinished tail), dones [T, N].
    Returns (advantages [T, N], returns [T, N]) with returns = advantages + values[:T].
    """
    T = rewards.shape[0]
    not_done = 1.0 - dones.float()
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * values[t + 1] * not_done[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv, adv + values[:T]


def bootstrap_truncated(
    rewards: torch.Tensor, values: torch.Tensor, truncated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Folds gamma * V(s_final) into the reward of time-limit truncations (Pardo et al. 2018).

    rewards [T, N], values [T+1, N] where values[t+1] is the value of the observation returned
    at step t (the final observation when the episode ended there), truncated [T, N].
    """
    return rewards + gamma * values[1:] * truncated.float()


def reward_to_go(
    rewards: torch.Tensor, dones: torch.Tensor, gamma: float, last_value: torch.Tensor
) -> torch.Tensor:
    """Discounted reward-to-go G_t = r_t + gamma G_{t+1} within each episode.

    rewards [T, N], dones [T, N], last_value [N] bootstraps episodes still running at the end of
    the rollout (zeros for plain Monte-Carlo REINFORCE). Returns G [T, N].
    """
    T = rewards.shape[0]
    not_done = 1.0 - dones.float()
    out = torch.zeros_like(rewards)
    running = last_value.to(rewards.dtype)
    for t in reversed(range(T)):
        running = rewards[t] + gamma * not_done[t] * running
        out[t] = running
    return out


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return normalize_with_scale(x, eps)[0]


def normalize_with_scale(x: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """(x − mean) / (std + eps) and the divisor std + eps (a coefficient in x's units divided by
    it keeps its weight against the normalised x)."""
    scale = x.std() + eps
    return (x - x.mean()) / scale, scale


def clipped_surrogate_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip_range: float
) -> torch.Tensor:
    """PPO paper eq. 7, negated for minimisation: -E[min(r A, clip(r, 1-eps, 1+eps) A)]. [B] -> []"""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range) * adv
    return -torch.min(unclipped, clipped).mean()


def ratio_surrogate_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """The surrogate without its clip (PPO paper eq. 6, CPI), negated: -E[r A]. [B] -> []"""
    return -(torch.exp(logp - old_logp) * adv).mean()


def kl_penalty_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, kl: torch.Tensor, beta: float
) -> torch.Tensor:
    """PPO paper eq. 8, negated: -E[r A - beta KL(pi_old(.|s) || pi(.|s))]. [B] -> []"""
    ratio = torch.exp(logp - old_logp)
    return -(ratio * adv - beta * kl).mean()


def adaptive_kl_beta(beta: float, kl: float, kl_target: float) -> float:
    """PPO paper sec. 4: halve beta when KL < target/1.5, double it when KL > target*1.5."""
    if kl < kl_target / 1.5:
        return beta / 2.0
    if kl > kl_target * 1.5:
        return beta * 2.0
    return beta


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_range_vf: float | None,
) -> torch.Tensor:
    """0.5 E[(V - R)^2]; with clipping, the max of clipped and unclipped errors
    (the value clipping of OpenAI baselines' PPO2). [..., B] -> [...]"""
    err = (values - returns).pow(2)
    if clip_range_vf is None:
        return 0.5 * err.mean(-1)
    clipped = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    return 0.5 * torch.max(err, (clipped - returns).pow(2)).mean(-1)


def mse_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    clip_range_vf: float | None,
) -> torch.Tensor:
    """SB3's PPO value loss: E[(V' − R)²] with V' = V, or with clipping
    V' = V_old + clip(V − V_old, −eps_vf, eps_vf) (no max, no ½). [..., B] -> [...]"""
    if clip_range_vf is not None:
        values = old_values + torch.clamp(values - old_values, -clip_range_vf, clip_range_vf)
    return (returns - values).pow(2).mean(-1)


# PPOConfig.value_loss -> function
VALUE_LOSSES = {"ppo2": value_loss, "mse": mse_value_loss}


def policy_gradient_loss(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """REINFORCE (Williams 1992): -E[log pi(a|s) * A]. [B] -> []"""
    return -(logp * adv).mean()


def clip_grad_norm_(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scales ``grads`` in place so their global L2 norm is at most ``max_norm``; returns the
    norm before clipping. Same rule as ``torch.nn.utils.clip_grad_norm_`` (coefficient
    max_norm / (norm + 1e-6), capped at 1) with less per-call bookkeeping for small nets."""
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return norm


def schedule(kind: str, initial: float, progress_remaining: float) -> float:
    """Value of a hyperparameter schedule; ``progress_remaining`` goes 1 -> 0 over training."""
    if kind == "linear":
        return initial * progress_remaining
    return initial


# -- preference losses (DPO family) -------------------------------------------------------------
# Each takes the policy-minus-reference log-ratios of the chosen (w) and rejected (l) sequences,
# log pi(y_w) - log pi_ref(y_w) and log pi(y_l) - log pi_ref(y_l) [B], and the strength beta.


def dpo_loss(ratio_w: torch.Tensor, ratio_l: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, eq. 7): -E log sigma(beta (ratio_w - ratio_l)). [B] -> []"""
    return -torch.nn.functional.logsigmoid(beta * (ratio_w - ratio_l)).mean()


def ipo_loss(ratio_w: torch.Tensor, ratio_l: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2023, eq. 17 with tau = beta): E (ratio_w - ratio_l - 1/(2 beta))^2. [B] -> []"""
    return (ratio_w - ratio_l - 1.0 / (2.0 * beta)).pow(2).mean()


def hinge_loss(ratio_w: torch.Tensor, ratio_l: torch.Tensor, beta: float) -> torch.Tensor:
    """SLiC-style hinge on the scaled margin (Zhao et al. 2023): E max(0, 1 - beta (ratio_w - ratio_l))."""
    return torch.relu(1.0 - beta * (ratio_w - ratio_l)).mean()


@dataclass(frozen=True)
class PreferenceLoss:
    """A row of the preference-loss table: the loss on the log-ratios, and whether each sequence's
    log-ratio is first averaged over its tokens (control: its steps) instead of summed."""

    fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    per_token: bool = False

    def __call__(
        self,
        ratio_w: torch.Tensor,
        ratio_l: torch.Tensor,
        beta: float,
        len_w: torch.Tensor | None = None,
        len_l: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``ratio_*`` [B]: summed log π − log π_ref of the chosen / rejected sequences;
        ``len_*`` [B]: their lengths in tokens or steps (needed when ``per_token``)."""
        if self.per_token:
            ratio_w, ratio_l = ratio_w / len_w.clamp(min=1), ratio_l / len_l.clamp(min=1)
        return self.fn(ratio_w, ratio_l, beta)


PREFERENCE_LOSSES = {
    "dpo": PreferenceLoss(dpo_loss),
    # IPO as Azar et al. write it: sequence log-ratios (sums over the tokens)
    "ipo": PreferenceLoss(ipo_loss),
    # IPO on per-token mean log-ratios: TRL's DPOTrainer loss_type="ipo"
    "ipo-mean": PreferenceLoss(ipo_loss, per_token=True),
    "hinge": PreferenceLoss(hinge_loss),
}


# -- DPO's relatives without a paired log-ratio: SimPO, ORPO (reference-free), KTO (unpaired) ----
# ``avg_*``: a sequence's log-probability averaged over its tokens (control: its steps), [B].


def simpo_loss(avg_w: torch.Tensor, avg_l: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimPO (Meng et al. 2024, eq. 6): -E log σ(β (avg_w - avg_l) - γ), reference-free, with the
    target margin γ. TRL: CPOTrainer loss_type="simpo" (cpo_alpha=0, no label smoothing). [B] -> []"""
    return -torch.nn.functional.logsigmoid(beta * (avg_w - avg_l) - gamma).mean()


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate near 0 and for very negative x (Mächler 2012)."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_log_odds_ratio(avg_w: torch.Tensor, avg_l: torch.Tensor) -> torch.Tensor:
    """log σ(log odds(y_w) - log odds(y_l)) with odds(y) = P / (1 - P), P = exp(avg) (ORPO's
    eq. 4 and 7, Hong et al. 2024). [B]"""
    log_odds = (avg_w - avg_l) - (log1mexp(avg_w) - log1mexp(avg_l))
    return torch.nn.functional.logsigmoid(log_odds)


def orpo_loss(avg_w: torch.Tensor, avg_l: torch.Tensor, nll_w: torch.Tensor, lam: float) -> torch.Tensor:
    """ORPO in the paper's form (Hong et al. 2024, eq. 6): the SFT loss on the chosen responses
    (``nll_w``; ``relative_loss`` passes their NLL given the prompt, averaged over the batch's
    chosen-response tokens) minus λ E log σ(log odds ratio). [B] -> []

    TRL (1.16: ``trl.experimental.orpo.ORPOTrainer``, beta = λ) has the same odds-ratio term, but
    its NLL term is the mean over the prompt *and* response tokens of the chosen sequences (every
    non-pad token after the first, its bos included in the prompt). Ours equals TRL's token
    log-probs under its prompt-masked labels; TRL's loss minus ours is (S_p + S_r)/(N_p + N_r) −
    S_r/N_r, with S_p, N_p the NLL sum and count of the prompt tokens and S_r, N_r those of the
    responses (``tests/unit/test_relatives.py``). On control tasks there is no prompt: the NLL is
    over the chosen segments' steps."""
    return nll_w - lam * orpo_log_odds_ratio(avg_w, avg_l).mean()


def kto_loss(
    ratio_w: torch.Tensor, ratio_l: torch.Tensor, kl_ratio: torch.Tensor, beta: float,
    desirable_weight: float = 1.0, undesirable_weight: float = 1.0,
) -> torch.Tensor:  # fmt: skip
    """KTO (Ethayarajh et al. 2024, eq. 7) on unpaired examples: desirable y (log-ratio
    ``ratio_w``) lose 1 - σ(β (r - z)), undesirable ones 1 - σ(β (z - r)), where the reference
    point z = max(0, mean of ``kl_ratio``), the log-ratios of mismatched (x, y') pairs: an estimate
    of KL(π ‖ π_ref), not differentiated. The mean over all examples, weighted. TRL: KTOTrainer
    loss_type="kto". [B_w], [B_l], [K] -> []"""
    z = kl_ratio.detach().mean().clamp(min=0)
    desirable = 1 - torch.sigmoid(beta * (ratio_w - z))
    undesirable = 1 - torch.sigmoid(beta * (z - ratio_l))
    return torch.cat([desirable_weight * desirable, undesirable_weight * undesirable]).mean()


RELATIVES = ("simpo", "orpo", "kto")  # the preference losses beside PREFERENCE_LOSSES' rows


def relative_loss(
    name: str, logp_w: torch.Tensor, logp_l: torch.Tensor, ref_w: torch.Tensor, ref_l: torch.Tensor,
    len_w: torch.Tensor, len_l: torch.Tensor, beta: float, gamma: float = 0.5,
    kl_ratio: torch.Tensor | None = None, weights: tuple[float, float] = (1.0, 1.0),
) -> torch.Tensor:  # fmt: skip
    """One of ``RELATIVES`` on a batch of pairs: summed sequence log-probs of the policy
    (``logp_*``) and of π_ref (``ref_*``, unused by the reference-free SimPO and ORPO), sequence
    lengths (tokens or steps), and for KTO the log-ratios of mismatched pairs. A pair is two
    unpaired KTO examples (chosen: desirable, rejected: undesirable)."""
    avg_w, avg_l = logp_w / len_w.clamp(min=1), logp_l / len_l.clamp(min=1)
    if name == "simpo":
        return simpo_loss(avg_w, avg_l, beta, gamma)
    if name == "orpo":
        return orpo_loss(avg_w, avg_l, -logp_w.sum() / len_w.sum().clamp(min=1), beta)
    if name == "kto":
        if kl_ratio is None:
            raise ValueError("kto needs the log-ratios of mismatched pairs")
        return kto_loss(logp_w - ref_w, logp_l - ref_l, kl_ratio, beta, *weights)
    raise ValueError(f"unknown preference loss {name!r}")


# -- GRPO (Shao et al. 2024) and Dr. GRPO (Liu et al. 2025) -------------------------------------


def group_advantages(rewards: torch.Tensor, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """GRPO's advantages for rewards [G, k] (k samples of each of G prompts or start states):
    each reward minus its group's mean, divided by the group's (unbiased) std + eps when
    ``scale="group"``; centred only when ``scale="none"`` (Dr. GRPO). [G, k] -> [G, k]"""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if scale == "none":
        return centred
    if scale != "group":
        raise ValueError(f"scale must be 'group' or 'none', got {scale!r}")
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def grpo_loss(
    logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None, adv: torch.Tensor,
    mask: torch.Tensor, clip_range: float, beta: float, aggregation: str = "grpo", max_len: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """GRPO's policy loss on token log-probs [B, T] (``mask`` [B, T] marks real tokens): the
    clipped surrogate per token, −min(ρ A, clip(ρ, 1 ± ε) A) with ρ = π/π_old and the sequence's
    advantage A [B], plus β · the k3 estimate of KL(π ‖ π_ref) per token,
    exp(log π_ref − log π) − (log π_ref − log π) − 1. Aggregated ``grpo``: the mean over each
    sequence's tokens, then over sequences; ``dr_grpo``: the sum over all tokens / (B · max_len),
    no length normalisation; ``bnpo``: the mean over all tokens of the batch."""
    ratio = torch.exp(logp - old_logp)
    a = adv.unsqueeze(-1)
    per_token = -torch.min(ratio * a, ratio.clamp(1 - clip_range, 1 + clip_range) * a)
    if beta != 0.0:
        d = ref_logp - logp
        per_token = per_token + beta * (torch.exp(d) - d - 1)
    mask = mask.to(per_token.dtype)
    if aggregation == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if aggregation == "dr_grpo":
        return (per_token * mask).sum() / (per_token.shape[0] * (max_len or per_token.shape[1]))
    if aggregation == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def rrhf_loss(
    logp: torch.Tensor, lengths: torch.Tensor, scores: torch.Tensor, sft_weight: float = 1.0
) -> torch.Tensor:
    """RRHF (Yuan et al. 2023) for groups of k responses to one query: ``logp`` [G, k] summed
    response log-probs, ``lengths`` [G, k] their token counts, ``scores`` [G, k] their rewards.
    The ranking term Σ_{r_i < r_j} max(0, p_i − p_j) on length-normalised log-probs p = logp / len,
    plus ``sft_weight`` × the NLL of each group's best-scored response (summed over its tokens);
    averaged over groups. [G, k] -> []"""
    p = logp / lengths.clamp(min=1)
    worse = scores.unsqueeze(-1) < scores.unsqueeze(-2)  # [G, i, j]: r_i < r_j
    rank = (torch.relu(p.unsqueeze(-1) - p.unsqueeze(-2)) * worse).sum((-1, -2))
    best = scores.argmax(-1, keepdim=True)
    nll = -logp.gather(-1, best).squeeze(-1)
    return (rank + sft_weight * nll).mean()


def bradley_terry_loss(score_w: torch.Tensor, score_l: torch.Tensor) -> torch.Tensor:
    """Reward-model loss: -E log sigma(r(y_w) - r(y_l)) on summed segment rewards. [B] -> []"""
    return -torch.nn.functional.logsigmoid(score_w - score_l).mean()


def adaptive_kl_coef(coef: float, kl: float, target: float, n_steps: int, horizon: int) -> float:
    """The proportional controller of Ziegler et al. 2019 (sec. 2.2):
    coef <- coef (1 + clip(kl / target - 1, -0.2, 0.2) n_steps / horizon)."""
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return coef * (1.0 + error * n_steps / horizon)
