"""The calibration tool's pieces: the head-only loss is the same loss, the variants, the table."""

import pandas as pd
import pytest
import torch

from bench.bands import BANDS
from bench.pipeline import calibrate
from bench.pipeline.lm import lm_loss


def test_head_only_loss_is_the_same_loss_summed_in_another_order():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=40,
            n_positions=32,
            n_embd=16,
            n_layer=1,
            n_head=2,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )
    seqs, starts = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14, 15]], [2, 1, 3]
    full = lm_loss(model, seqs, 0, starts)
    head = calibrate.head_only_loss(model, seqs, 0, starts)
    assert head.item() == pytest.approx(full.item(), rel=1e-6)
    g_full = torch.autograd.grad(full, model.lm_head.weight)[0]
    g_head = torch.autograd.grad(head, model.lm_head.weight)[0]
    assert torch.allclose(g_full, g_head, atol=1e-6)
    smooth_full = lm_loss(model, seqs, 0, starts, label_smoothing=0.05)
    smooth_head = calibrate.head_only_loss(model, seqs, 0, starts, label_smoothing=0.05)
    assert smooth_head.item() == pytest.approx(smooth_full.item(), rel=1e-6)


def test_variants_and_the_table():
    names = [v["variant"] for v in calibrate.variants([0, 1, 2], 0)]
    assert names == [
        "as specified",
        "2 threads",
        "LM head at the reference positions only",
        "SFT seed 1",
        "SFT seed 2",
    ]
    row = dict(recipe="r", variant="as specified", machine="m", final_loss=0.3, win_T0=0.5, score_T0=0.8,
               win_T1=0.25, score_T1=0.7)  # fmt: skip
    table = pd.DataFrame([row, {**row, "variant": "SFT seed 1", "win_T1": 0.18}])
    md = calibrate.table_markdown(table)
    assert "| r | SFT seed 1 | m | 0.300 | 0.500 / 0.180 | 0.80 / 0.70 |" in md
    assert "| r | 2 | 0.180 | 0.250 | no |" in md  # 0.18 is below the band's margin (0.20)
    # a task without references (sentiment): its gold score alone, judged at T = 1 within [-0.4, 0.4]
    rows = [
        dict(recipe="s", variant="as specified", machine="m", final_loss=1.2, score_T0=0.1, score_T1=0.05),
        dict(recipe="s", variant="2 threads", machine="m", final_loss=1.3, score_T0=0.2, score_T1=-0.45),
    ]
    md = calibrate.table_markdown(pd.DataFrame(rows), "sentiment")
    assert "| recipe | perturbation | machine | final loss | gold score, T = 0 / 1 |" in md
    assert "| s | 2 threads | m | 1.300 | 0.20 / -0.45 |" in md
    assert "| s | 2 | -0.450 | 0.050 | no |" in md
    band = BANDS["summarization"]
    assert band.with_margin(0.2) and not band.with_margin(0.41) and band.inside(0.45)
