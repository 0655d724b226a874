"""Assignment: which arm a visitor is in, as a pure function of (salt, pseudonym).

No state and no Redis: every worker computes the same arm for the same visitor, at
any time. A visitor's position in an experiment's hash space is `unit(salt, pid)` in
[0, 1). Experiments of one layer share the layer's salt and own disjoint `bucket`s of
that space, so they never share a visitor; experiments in different layers (or in
none) hash with different salts, so their assignments are independent. An
experiment's bucket is as wide as its traffic share: [0, traffic) alone, or a free
stretch of its layer's space given when it starts. The arm is picked by a second
hash, salted with the experiment's id: an experiment that takes over the stretch a
stopped one freed must not hand each arm the previous test's arm mates.

The holdout hashes with one salt for every experiment: the same visitors are held
out of every experiment that has a holdout, and get the defaults.

Decide assigns by the profile's pseudonym (the customer's, once an identify merged the
device in), so every device of a person shows the arm the person is counted in.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from engine.experiments.definitions import HOLDOUT_ARM, Arm, Experiment

HOLDOUT_SALT = "holdout"
_SCALE = float(2**64)


def unit(salt: str, pid: str) -> float:
    """A uniform number in [0, 1) that only (salt, pid) determines (BLAKE2b, 64 bits)."""
    digest = hashlib.blake2b(f"{salt}\x1f{pid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: Experiment
    arm: str
    definition: Arm | None  # None: the holdout, who get the defaults

    @property
    def holdout(self) -> bool:
        return self.definition is None


def assign(experiment: Experiment, pid: str) -> Assignment | None:
    """The visitor's arm, the holdout, or None when the visitor is not in the test."""
    low, high = experiment.bucket
    u = unit(experiment.salt, pid)
    if not low <= u < high:
        return None
    if experiment.holdout and unit(HOLDOUT_SALT, pid) < experiment.holdout:
        return Assignment(experiment, HOLDOUT_ARM, None)
    arm = experiment.arms[pick(experiment.weights, unit(f"arm:{experiment.id}", pid))]
    return Assignment(experiment, arm.name, arm)


def pick(weights: tuple[float, ...], u: float) -> int:
    """The index whose share of the cumulative weights holds `u` (in [0, 1))."""
    cumulative = list(accumulate(weights))
    return min(bisect_right(cumulative, u * cumulative[-1]), len(weights) - 1)
