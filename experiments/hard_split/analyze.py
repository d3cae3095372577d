"""ExPO, ReLIFT and UFT against GRPO on the hard split of scratchpad addition, from a sweep of
configs/hard_split.py:

    python experiments/hard_split/analyze.py runs/hard_split [runs/hard_split_uft100] [--out DIR]

(runs/hard_split_uft100: the follow-up UFT arm with hint_steps 100, started from the first
sweep's SFT models with `--sft_from`; its arm is `uft_h100`. DIR defaults to
runs/hard_split/analysis/, under the first sweep.)

Per seed, from points/*/summary.json and the eval rows of metrics.jsonl: the held-out greedy
accuracy, pass@1 and pass@8 overall, on the hard rows (difficulty d > max_digits: no worked
solution in the SFT warm-up) and on the easy rows (d <= max_digits), after SFT, at every
intermediate evaluation and after RL. The per-difficulty keys of the evaluation
(`greedy_acc_d{d}`, `pass@1_d{d}`, `pass@8_d{d}`, rlpt.evaluation.metrics.by_difficulty) are pooled
over the hard (easy) levels weighted by their prompt counts in the held-out set, which the script
rebuilds from the run's task config (a fixed set, the same for every run).

The sweep's evaluation keeps no per-prompt results, so "prompts with SFT pass@8 = 0 that RL
solves" is read from these pooled keys: with 8 samples per prompt, pass@8 is exactly the
fraction of prompts with at least one correct sample, so `hard pass@8 after RL x hard prompts`
counts the hard prompts solved after RL; when the SFT model's hard pass@8 is 0 (every hard
prompt unsolved by 8 samples, as docs/tasks.md measured) these are exactly the prompts of the
claim. When it is not 0 the row is an upper bound on them (a prompt solved after RL may have been
solved after SFT).

From the RL rows (every step is logged), averaged over an early window (first 10% of the RL
steps) and a late one (last 25%) (experiments.analysis.early_late): train `accuracy` (sampled,
all rows; UFT's is on hinted prompts and scores hint + completion, so it is not comparable) and
`zero_adv_group_frac` (groups whose rewards are all equal: no GRPO signal; every all-failed hard
group is one). Per guidance arm (its own table): ExPO `expl_loglik`, `expl_sft_tokens`,
`expl_len`; ReLIFT `relift_failed_prompts`, the number of SFT updates (sum of
`relift_sft_applied`) and `relift_sft_loss` on those steps; UFT `hint_tokens`, `hint_prob`,
`hint_nll`.

Writes `results.md` (mean and 95% Student-t interval over seeds per arm, and of the per-seed
difference arm - GRPO: the arms of a seed share one SFT model), `results.json` and `results.png`.
"""
import functools
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from experiments.analysis import (  # noqa: E402
    SEED_CURVES_TITLE, analysis_main, axis_label, comparison_table, early_late, last_rl_step,
    load_arms, plot_seed_curves, rl_value, save_figure, windowed)

ARMS = ("grpo", "exp_grpo", "relift", "uft", "uft_h100")
LABEL = {"grpo": "GRPO", "exp_grpo": "ExPO", "relift": "ReLIFT", "uft": "UFT",
         "uft_h100": "UFT, hint_steps 100"}
COLOR = {"grpo": "tab:blue", "exp_grpo": "tab:red", "relift": "tab:green", "uft": "tab:orange",
         "uft_h100": "tab:brown"}


def arm_of(overrides, cfg):
    """The algorithm's name, `_h<N>` added when the point sets UFT's hint_steps
    (configs/hard_split.py names it only when it is not the default)."""
    hint = re.search(r"algo\.hint_steps=(\d+)", overrides)
    return cfg["algo"]["name"] + (f"_h{hint.group(1)}" if hint else "")


load = functools.partial(load_arms, arm_of=arm_of, known=ARMS)
KEYS = ("greedy_acc", "pass@1", "pass@8")


def split_of(cfg):
    """(hard levels, easy levels, {level: held-out prompts}) of a run's config: the held-out set
    rebuilt from the task's digit knobs (solution masks do not matter for the prompts)."""
    from rlpt.tasks.scratchpad import ScratchpadAdditionTask
    kw = cfg["task"]["kwargs"]
    task = ScratchpadAdditionTask(**{k: kw[k] for k in ("min_digits", "max_digits",
                                                        "hard_max_digits", "hard_frac")
                                     if k in kw})
    d = task.eval_set(int(cfg["eval"]["n_prompts"]))["difficulty"]
    counts = {int(v): int(np.sum(d == v)) for v in np.unique(d)}
    hard = [v for v in counts if v > int(kw["max_digits"])]
    return hard, [v for v in counts if v not in hard], counts


def pooled(row, key, levels, counts):
    """The mean of `key` over the prompts of `levels` (nan when a level's key is missing)."""
    vals = [(row.get(f"{key}_d{v}", float("nan")), counts[v]) for v in levels]
    n = sum(c for _, c in vals)
    return float(sum(x * c for x, c in vals) / n) if n else float("nan")


def eval_row(run, step):
    """The run's eval row at RL step `step` ("sft" = the first, "rl" = the last)."""
    rows = run["eval"]
    if step == "sft":
        return rows[0] if rows else {}
    if step == "rl":
        return rows[-1] if rows else {}
    return next((r for r in rows if r["step"] == step), {})


def heldout(which, part, key, split):
    """comparison_table value: held-out `key` on `part` (all | hard | easy) at eval `which`."""
    hard, easy, counts = split

    def value(run):
        row = eval_row(run, which)
        if part == "all":
            return float(row.get(key, float("nan")))
        return pooled(row, key, hard if part == "hard" else easy, counts)
    return value


def relift_updates(run):
    return float(sum(r.get("relift_sft_applied", 0.0) for r in run["rl"]))


def relift_sft_loss(run):
    vals = [r["relift_sft_loss"] for r in run["rl"] if r.get("relift_sft_applied", 0.0) > 0]
    return float(np.mean(vals)) if vals else float("nan")


ARM_ROWS = {  # (label, RL-row key or value function, digits) of each guidance arm's own table
    "exp_grpo": [("self-explanation log-likelihood (expl_loglik)", "expl_loglik", 2),
                 ("SFT tokens per explanation row (expl_sft_tokens)", "expl_sft_tokens", 1),
                 ("self-explanation length (expl_len)", "expl_len", 1)],
    "relift": [("all-failed prompts per step (of the batch)", "relift_failed_prompts", 2),
               ("SFT updates on the buffer (whole run)", relift_updates, 0),
               ("SFT loss on those updates", relift_sft_loss, 3)],
    "uft": [("hint tokens per prompt (hint_tokens)", "hint_tokens", 2),
            ("hint probability p(t) (hint_prob)", "hint_prob", 3),
            ("NLL of hint tokens (hint_nll)", "hint_nll", 3)],
}


def table(runs):
    arms = [a for a in ARMS if a in runs]
    steps = last_rl_step(runs, arms)
    (e0, e1), (l0, l1) = early_late(steps)
    first = next(iter(runs["grpo"].values()))
    split = split_of(first["cfg"])
    hard, easy, counts = split
    mids = [r["step"] for r in first["eval"][1:-1]]
    n_hard = sum(counts[v] for v in hard)
    rows = []
    for which, name in [("sft", "after SFT")] + [(s, f"at RL step {s}") for s in mids] + [
            ("rl", "after RL")]:
        for part in ("all", "hard", "easy"):
            keys = KEYS if which in ("sft", "rl") or part == "hard" else ("pass@1",)
            rows += [(f"held-out {k}, {part} rows, {name}", heldout(which, part, k, split), 3)
                     for k in keys]
    hard_pass8 = heldout("rl", "hard", "pass@8", split)
    rows.append((f"hard prompts solved after RL (>= 1 of 8 correct; of {n_hard})",
                 lambda run: hard_pass8(run) * n_hard, 1))
    for key, name in (("accuracy", "train accuracy (sampled)"),
                      ("zero_adv_group_frac", "groups with no signal (zero_adv_group_frac)")):
        rows += [(f"{name}, {w}", windowed(key, w, steps), 3) for w in ("early", "late")]
    note = (f"Hard rows: difficulty {hard} ({n_hard} of "
            f"{sum(counts.values())} held-out prompts: {counts}). RL steps {steps}; early = steps "
            f"{e0}-{e1}, late = steps {l0}-{l1}; ")
    text, data = comparison_table(runs, arms, LABEL, rows, "grpo", note)
    data.update(steps=steps, hard_levels=hard, easy_levels=easy,
                prompts_per_level={str(k): v for k, v in counts.items()}, eval_steps=mids,
                per_arm={})
    for a in arms:
        own = ARM_ROWS.get(re.sub(r"_h\d+$", "", a))
        if own is None:
            continue
        arm_rows = []
        for label, key, digits in own:
            if callable(key):
                arm_rows.append((label, key, digits))
            else:
                arm_rows += [(f"{label}, {w}", windowed(key, w, steps), digits)
                             for w in ("early", "late")]
        t, d = comparison_table(runs, [a], LABEL, arm_rows, a, f"{LABEL[a]}'s own metrics; ")
        text += f"\n{t}"
        data["per_arm"][a] = d
    return text, data


def plot(runs, data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    arms = [a for a in ARMS if a in runs]
    seeds = data["seeds"]
    counts = {int(k): v for k, v in data["prompts_per_level"].items()}
    fig, axes = plt.subplots(1, 4, figsize=(20, 4))
    for ax, key, title in ((axes[0], "accuracy", "train accuracy (sampled; UFT: hinted)"),
                           (axes[1], "zero_adv_group_frac", "groups with no signal")):
        plot_seed_curves(ax, runs, arms, seeds, lambda r, k=key: rl_value(r, k), LABEL, COLOR,
                         title, axis_label(key))
    for ax, key in ((axes[2], "pass@8"), (axes[3], "pass@1")):
        for a in arms:
            per_seed = []
            for s in seeds:
                ev = runs[a][s]["eval"]
                per_seed.append(([r["step"] for r in ev],
                                 [pooled(r, key, data["hard_levels"], counts) for r in ev]))
                ax.plot(*per_seed[-1], color=COLOR[a], alpha=0.35, lw=0.8)
            n = min(len(x) for x, _ in per_seed)
            ax.plot(per_seed[0][0][:n], np.nanmean([y[:n] for _, y in per_seed], axis=0),
                    color=COLOR[a], lw=2, marker="o", label=f"{LABEL[a]} (mean of {len(seeds)})")
        ax.set_title(f"held-out {key} on hard rows (d in {data['hard_levels']})")
        ax.set_xlabel("RL step (0 = after SFT)")
        ax.set_ylabel(f"held-out {key} (fraction)")
        ax.legend()
    save_figure(fig, SEED_CURVES_TITLE, path)


if __name__ == "__main__":
    analysis_main(__file__, "results", table, plot, load=load)
