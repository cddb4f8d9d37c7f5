"""Reference bands: where the reference every fine-tuning starts from must lie — each LM task's
π_SFT row (``bench.pipeline.calibrate`` explains why and builds its perturbation table) and the control
alignment tasks' reference policies — so that methods have room to move and a verdict does not
hang on which side of a band the reference landed. Reports state the check at the top."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    metric: str  # evaluation metric of π_SFT's row
    temperature: float
    lo: float
    hi: float
    margin: float  # a calibrated recipe keeps every perturbed build within [lo + margin, hi - margin]
    what: str  # for a reader

    def inside(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def with_margin(self, value: float) -> bool:
        return self.lo + self.margin <= value <= self.hi - self.margin

    def text(self) -> str:
        return f"{self.what} at T = {self.temperature:g} in [{self.lo:g}, {self.hi:g}]"


BANDS = {
    # the DPO paper's SFT model wins a minority against the TL;DR references; 15-45% leaves room both
    # ways, and every perturbed build must stay 0.05 inside (at least 0.20 at T = 1)
    "summarization": Band("eval/win_rate", 1.0, 0.15, 0.45, 0.05, "win rate against the references"),
    # neither strongly negative nor strongly positive (VADER compound in [-1, 1]): fine-tuning has room
    # to move toward +1; every perturbed build within [-0.4, 0.4]
    "sentiment": Band("eval/return", 1.0, -0.5, 0.5, 0.1, "mean gold sentiment score"),
}


# control alignment: the reference policy's normalised score at T = 1 (0 = random, 1 = solved). The
# suites train it to "roughly a third of the way from random to solved"; a sixth to two-thirds
# leaves room both ways, and every seed's reference must stay 0.05 inside.
CONTROL_REFERENCE = Band("normalised", 1.0, 0.15, 0.65, 0.05, "normalised score of the reference policy")
