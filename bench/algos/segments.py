"""Labelled pairs of trajectory segments, cut from episodes: the preference data of control
alignment (``bench.pipeline.control`` cuts them from π_ref's episodes once; ``online-dpo`` from the
current policy's as it trains).

Layer: algos.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class SegmentPairs(NamedTuple):
    """Labelled pairs of trajectory segments: ``obs`` [S, H, d], ``actions`` [S, H(, D)], ``mask``
    [S, H] (1 on real steps), ``returns`` [S] (true segment returns); pair i prefers segment
    ``winner[i]`` to ``loser[i]``; ``redrawn``: pairs drawn again because they tied."""

    obs: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor
    returns: torch.Tensor
    winner: torch.Tensor
    loser: torch.Tensor
    redrawn: int


def segment_pairs(eps, n_pairs: int, H: int, label_temperature: float, rng: np.random.Generator,
                  score=None) -> SegmentPairs | None:  # fmt: skip
    """``n_pairs`` pairs of segments of ``H`` steps cut from episodes ``eps`` (as
    ``reference_episodes`` returns them), each from a uniformly random visited state; a segment
    stops early only where its episode terminated (a time limit is not an outcome). Labelled by
    Bradley–Terry on ``score(obs, actions, rewards)`` (default: the true segment return):
    P(first ≻ second) = σ((s1 − s2) / τ), τ = ``label_temperature``, 0 deterministic. Pairs of equal
    score carry no preference and are drawn again; None if that happens 100 × ``n_pairs`` times."""
    lengths = np.array([len(e[2]) for e in eps])
    score = score or (lambda o, a, r: float(r.sum()))

    def segment():
        e = rng.choice(len(eps), p=lengths / lengths.sum())
        last = lengths[e] - H + 1 if eps[e][3] and lengths[e] >= H else lengths[e]
        start = int(rng.integers(last))
        return tuple(x[start : start + H] for x in eps[e][:3])

    segments, winner, loser, redrawn = [], [], [], 0
    while len(winner) < n_pairs:
        s1, s2 = segment(), segment()
        r1, r2 = score(*s1), score(*s2)
        if r1 == r2:
            redrawn += 1
            if redrawn > 100 * n_pairs:
                return None
            continue
        if label_temperature == 0:
            first_wins = r1 > r2
        else:
            z = np.clip((r1 - r2) / label_temperature, -500, 500)
            first_wins = rng.random() < 1.0 / (1.0 + np.exp(-z))
        i = len(segments)
        segments += [s1, s2]
        winner.append(i if first_wins else i + 1)
        loser.append(i + 1 if first_wins else i)
    S, obs_dim = len(segments), segments[0][0].shape[1]
    act = segments[0][1]
    obs = np.zeros((S, H, obs_dim), np.float32)
    actions = np.zeros((S, H, *act.shape[1:]), np.float32 if act.dtype.kind == "f" else np.int64)
    mask = np.zeros((S, H), np.float32)
    for k, (o, a, _) in enumerate(segments):
        obs[k, : len(o)], actions[k, : len(a)], mask[k, : len(o)] = o, a, 1.0
    returns = np.array([float(r.sum()) for _, _, r in segments], np.float32)
    arrays = (torch.from_numpy(x) for x in (obs, actions, mask, returns))
    return SegmentPairs(*arrays, torch.tensor(winner), torch.tensor(loser), redrawn)
