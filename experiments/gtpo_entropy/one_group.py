"""The README's one-group demonstration: GTPO advantages of one group of 8 responses (4 correct,
reward 1; 4 wrong, reward 0; 16 tokens each; token entropies uniform in [0.05, 1], numpy seed 0)
under the default `separate` z-score and the `joint` one (rlpt.advantages.gtpo_advantages).

    python experiments/gtpo_entropy/one_group.py > experiments/gtpo_entropy/one_group.txt

Deterministic (no training); tests/test_experiment_analyses.py checks that the committed
one_group.txt is this script's output.
"""
import numpy as np

from rlpt.advantages import gtpo_advantages

G, T, SEED = 8, 16, 0


def one_group_lines():
    rng = np.random.default_rng(SEED)
    rewards = np.array([1.0] * 4 + [0.0] * 4, np.float32)
    entropy = rng.uniform(0.05, 1.0, (G, T)).astype(np.float32)
    mask = np.ones((G, T), np.float32)
    fmt = lambda v: f"{v:.3f}".replace("-0.000", "0.000")
    lines = []
    for norm in ("separate", "joint"):
        a = np.asarray(gtpo_advantages(rewards, entropy, mask, G, norm=norm))
        succ, fail = a[:4], a[4:]
        lines.append(f"{norm:<9} GTPO mean A over success tokens {fmt(succ.mean())}, failure "
                     f"tokens {fmt(fail.mean())}, frac of success tokens with A<0 "
                     f"{(succ < 0).mean():.2f}")
    return lines


if __name__ == "__main__":
    print("\n".join(one_group_lines()))
