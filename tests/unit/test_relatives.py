"""DPO's relatives without a paired log-ratio: SimPO and ORPO (reference-free) and KTO (unpaired),
by hand and against TRL's own loss code on identical log-probabilities."""

import math
from types import SimpleNamespace

import pytest
import torch

from bench.algos import losses

AVG_W = torch.tensor([-0.8, -1.5, -0.2, -3.0])
AVG_L = torch.tensor([-1.1, -1.2, -0.9, -2.5])


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_simpo_by_hand():
    beta, gamma = 2.0, 0.5
    expected = -sum(math.log(_sigmoid(beta * (w - l) - gamma)) for w, l in zip(AVG_W.tolist(), AVG_L.tolist()))
    assert float(losses.simpo_loss(AVG_W, AVG_L, beta, gamma)) == pytest.approx(expected / 4, rel=1e-6)


def test_orpo_by_hand():
    # one pair: P_w = e^-0.5, P_l = e^-1; odds = P / (1 - P)
    pw, pl = math.exp(-0.5), math.exp(-1.0)
    log_or = math.log(pw / (1 - pw)) - math.log(pl / (1 - pl))
    ratio = float(losses.orpo_log_odds_ratio(torch.tensor([-0.5]), torch.tensor([-1.0])))
    assert ratio == pytest.approx(math.log(_sigmoid(log_or)), rel=1e-6)
    loss = losses.orpo_loss(torch.tensor([-0.5]), torch.tensor([-1.0]), torch.tensor(0.7), lam=0.1)
    assert float(loss) == pytest.approx(0.7 - 0.1 * math.log(_sigmoid(log_or)), rel=1e-6)
    # log(1 - e^x) stays finite and accurate on both sides of its branch point
    x = torch.tensor([-1e-8, -0.5, -0.7, -30.0], dtype=torch.float64)
    expected = [math.log(-math.expm1(v)) for v in x.tolist()]
    assert losses.log1mexp(x).tolist() == pytest.approx(expected, rel=1e-12)


def test_kto_by_hand():
    beta = 0.5
    ratio_w, ratio_l = torch.tensor([0.4, -0.2]), torch.tensor([-0.6, 0.1, 0.3])
    kl_ratio = torch.tensor([0.3, -0.1, 0.4])  # z = mean = 0.2
    z = 0.2
    desirable = [1 - _sigmoid(beta * (r - z)) for r in ratio_w.tolist()]
    undesirable = [1 - _sigmoid(beta * (z - r)) for r in ratio_l.tolist()]
    expected = (sum(desirable) * 1.0 + sum(undesirable) * 1.33) / 5
    got = losses.kto_loss(ratio_w, ratio_l, kl_ratio, beta, desirable_weight=1.0, undesirable_weight=1.33)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # the reference point is never negative, and carries no gradient
    kl = torch.tensor([-1.0, -2.0], requires_grad=True)
    w = torch.tensor([0.1], requires_grad=True)
    losses.kto_loss(w, torch.tensor([0.0]), kl, beta).backward()
    assert kl.grad is None and w.grad is not None
    no_z = losses.kto_loss(torch.tensor([0.1]), torch.tensor([0.0]), torch.tensor([0.0]), beta)
    assert float(losses.kto_loss(torch.tensor([0.1]), torch.tensor([0.0]), torch.tensor([-1.0, -2.0]), beta)) == float(no_z)


# -- against TRL's code -------------------------------------------------------------------------


def _trainer_self(**attrs):
    """The attributes TRL's loss methods read from their trainer."""
    return SimpleNamespace(accelerator=SimpleNamespace(device=torch.device("cpu")), **attrs)


def test_simpo_equals_trl_cpo_trainer_simpo_loss():
    cpo = pytest.importorskip("trl.experimental.cpo.cpo_trainer")
    beta, gamma = 2.0, 0.5
    me = _trainer_self(beta=beta, alpha=0.0, loss_type="simpo", simpo_gamma=gamma, label_smoothing=0.0)
    trl_losses = cpo.CPOTrainer.cpo_loss(me, AVG_W, AVG_L)[0]
    ours = losses.simpo_loss(AVG_W, AVG_L, beta, gamma)
    assert float((ours - trl_losses.mean()).abs()) < 1e-7


def test_orpo_equals_trl_orpo_trainer_odds_ratio_loss():
    orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    lam, nll = 0.1, torch.tensor(1.7)
    trl_losses = orpo.ORPOTrainer.odds_ratio_loss(_trainer_self(beta=lam), AVG_W, AVG_L)[0]
    trl_loss = nll - trl_losses.mean()  # ORPOTrainer.get_batch_loss_metrics
    ours = losses.orpo_loss(AVG_W, AVG_L, nll, lam)
    assert float((ours - trl_loss).abs()) < 1e-7


def test_kto_equals_trl_kto_trainer_on_identical_log_probs():
    """TRL's KTOTrainer._compute_loss (its loss is inline in it) run on a stand-in model that
    returns given per-token log-probabilities: the same loss as ours on the same sequences, and
    the same gradient with respect to the policy's log-probabilities."""
    import types
    from collections import defaultdict

    kto = pytest.importorskip("trl.trainer.kto_trainer")
    B, L = 5, 4
    desirable = torch.tensor([True, False, True, True, False])
    ref = torch.tensor([-3.2, -4.0, -2.5, -5.0, -1.0])
    kl_policy, kl_ref = torch.tensor([-5.0, -4.0, -6.5, -3.0, -2.0]), torch.tensor([-5.5, -4.2, -6.0, -3.9, -2.1])
    ones = torch.ones(B, L, dtype=torch.long)
    batch = dict(input_ids=0 * ones, attention_mask=ones, completion_mask=ones, KL_input_ids=ones,
                 KL_attention_mask=ones, KL_completion_mask=ones, label=desirable, ref_logps=ref,
                 ref_KL_logps=kl_ref)  # fmt: skip

    def run(beta, weights):
        policy = torch.tensor([-3.0, -4.5, -2.0, -6.0, -1.5], requires_grad=True)

        def model(input_ids, **_):  # the sequence log-prob sits on the first completion token
            seq = kl_policy if bool((input_ids == 1).all()) else policy
            per_token = torch.cat([seq[:, None], torch.zeros(B, L - 2)], dim=1)
            return SimpleNamespace(log_probs=per_token, entropy=torch.zeros(B, L - 1), mean_logits=torch.zeros(B, L - 1))

        me = SimpleNamespace(
            model=SimpleNamespace(training=True), calculate_KL=True, aux_loss_enabled=False,
            precompute_ref_logps=True, loss_type="kto", beta=beta, desirable_weight=weights[0],
            undesirable_weight=weights[1], _metrics=defaultdict(lambda: defaultdict(list)),
            _total_train_tokens=0, _tp_size=1,
            accelerator=SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x),
        )  # fmt: skip
        me._compute_kl_logps = types.MethodType(kto.KTOTrainer._compute_kl_logps, me)
        trl_loss = kto.KTOTrainer._compute_loss(me, model, batch, False)
        (trl_grad,) = torch.autograd.grad(trl_loss, policy)
        ratio = policy - ref
        ours = losses.kto_loss(ratio[desirable], ratio[~desirable], kl_policy - kl_ref, beta, *weights)
        (our_grad,) = torch.autograd.grad(ours, policy)
        return float((ours - trl_loss).abs()), float((our_grad - trl_grad).abs().max())

    for beta, weights in [(0.1, (1.0, 1.0)), (2.0, (1.0, 1.33))]:
        loss_diff, grad_diff = run(beta, weights)
        assert loss_diff < 1e-7 and grad_diff < 1e-7
