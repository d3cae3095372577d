"""Every arm at its best learning rate of one grid, chosen on validation prompts (issue 27,
part 3: the learning rate must not be an arm's hidden advantage).

A grid sweep crosses the arms with one axis `config.optim.lr` (the same values for every arm)
and the seeds, and sets `eval.validation_prompts` (rlpt.evaluation.validation), so each point's
summary holds `validation_after_rl` (prompts apart from the held-out ones) and `after_rl`
(held-out). For each arm, its *best rate* is the one whose mean over seeds of the selection
metric on the validation prompts after RL is highest (a tie goes to the lower rate); the
held-out prompts play no part in the choice. The report gives

* per arm and rate: the validation metric and the held-out metrics (mean, 95% t-interval over
  seeds), the best rate marked;
* per arm other than the baseline and held-out metric: the difference arm - baseline paired by
  seed (every point of a seed starts from the same SFT model) at the *matched* rate (the rate the
  experiment used for every arm before) and with each arm at its own best rate.

A verdict that holds at both is not the learning rate's doing; one that flips between them is
reported as such (experiments/README.md, "Learning rates").
"""
import argparse
import json
import os
import re
import runpy
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from experiments.analysis import fmt_ci, load_runs, save_figure, summary_value
from rlpt.sweep.report import INTERVAL, t_interval

LR = re.compile(r"(?:^|,)optim\.lr=([^,]+)")


def algo_arm(overrides: str, cfg: Dict) -> str:
    """The default arm of a point (its overrides without lr and seed, its config): the
    algorithm's name."""
    return cfg["algo"]["name"]


def load_grid(sweep_dirs, arm_of: Callable[[str, Dict], str] = algo_arm) -> Dict:
    """{arm: {lr: {seed: run}}} (runs as experiments.analysis.load_runs) of a grid sweep, or of
    several sweeps that together make the grid (one workdir per rate, run with `--only` and
    `--sft_from` the first: every rate then starts from the same SFT models)."""
    grid: Dict = {}
    for sweep_dir in [sweep_dirs] if isinstance(sweep_dirs, str) else sweep_dirs:
        for overrides, by_seed in load_runs(sweep_dir, arm_pattern=r"^(.*),seed=\d+$").items():
            m = LR.search(overrides)
            if m is None:
                raise ValueError(f"{sweep_dir}: point {overrides!r} has no optim.lr= (not a "
                                 "learning-rate grid)")
            arm = arm_of(LR.sub("", overrides).strip(","), next(iter(by_seed.values()))["cfg"])
            lr = float(m.group(1))
            if lr in grid.get(arm, {}):
                raise ValueError(f"{sweep_dir}: arm {arm!r} at lr {lr:g} is in two settings or "
                                 "sweeps")
            grid.setdefault(arm, {})[lr] = by_seed
    rates = {arm: sorted(by_lr) for arm, by_lr in grid.items()}
    if len({tuple(r) for r in rates.values()}) > 1:
        raise ValueError(f"{sweep_dirs}: the arms have different rate grids: {rates}")
    return grid


def grid_seeds(grid: Dict) -> list:
    """The seeds every (arm, rate) has, ascending."""
    return sorted(set.intersection(*[set(by_seed) for by_lr in grid.values()
                                     for by_seed in by_lr.values()]))


def best_rate(by_lr: Dict, metric: str, seeds: Sequence[int]) -> float:
    """The rate with the highest mean `validation_after_rl[metric]` over `seeds` (ties: the
    lower rate); a point without validation rows is an error."""
    means = {}
    for lr, by_seed in sorted(by_lr.items()):
        vals = [summary_value(by_seed[s], "validation_after_rl", metric) for s in seeds]
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"lr {lr:g}: no validation_after_rl[{metric!r}] (run the grid with "
                             "eval.validation_prompts > 0)")
        means[lr] = float(np.mean(vals))
    return max(means, key=lambda lr: (means[lr], -lr))


def grid_report(grid: Dict, baseline: str, select: str, metrics: Sequence[str],
                matched_lr: float, labels: Dict[str, str]) -> Tuple[str, Dict]:
    """The two tables of the module doc -> (markdown, data)."""
    seeds, arms = grid_seeds(grid), list(labels)
    rates = sorted(grid[baseline])
    if matched_lr not in rates:
        raise ValueError(f"the matched rate {matched_lr:g} is not on the grid {rates}")
    best = {a: best_rate(grid[a], select, seeds) for a in arms}
    held = lambda a, lr, k: [summary_value(grid[a][lr][s], "after_rl", k) for s in seeds]
    val = lambda a, lr: [summary_value(grid[a][lr][s], "validation_after_rl", select)
                         for s in seeds]
    head = ["arm", "lr", f"validation {select}"] + [f"held-out {k}" for k in metrics]
    lines = [f"Seeds {seeds}; {INTERVAL}. The best rate of each arm (**bold**) has the highest "
             f"mean validation {select} after RL; held-out prompts play no part in the choice.",
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    data = {"seeds": seeds, "rates": rates, "select": select, "matched_lr": matched_lr,
            "best": best, "points": {}, "diffs": {}}
    for a in arms:
        for lr in rates:
            cis = {"validation": t_interval(val(a, lr)),
                   **{k: t_interval(held(a, lr, k)) for k in metrics}}
            data["points"][f"{a}@{lr:g}"] = cis
            mark = (lambda s: f"**{s}**") if lr == best[a] else (lambda s: s)
            lines.append("| " + " | ".join([labels[a], mark(f"{lr:g}")] + [
                fmt_ci(cis[k]) for k in ["validation", *metrics]]) + " |")
    others = [a for a in arms if a != baseline]
    if not others:   # one arm (e.g. RL against its own SFT model): the best rate is the result
        lines += ["", f"One arm: no differences between arms; its best rate is {best[baseline]:g}."]
        return "\n".join(lines) + "\n", data
    head = ["held-out metric"] + [
        f"{labels[a]} - {labels[baseline]}, {which}" for a in others
        for which in (f"both at {matched_lr:g}", "each at its best")]
    lines += ["", f"Differences paired by seed: at the matched rate {matched_lr:g}, and with "
              "each arm at its best rate (" + ", ".join(f"{labels[a]} {best[a]:g}" for a in arms)
              + ").", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in metrics:
        cells = [k]
        for a in others:
            pairs = ((matched_lr, matched_lr), (best[a], best[baseline]))
            for which, (lr_a, lr_b) in zip(("matched", "best"), pairs):
                ci = t_interval([x - y for x, y in zip(held(a, lr_a, k), held(baseline, lr_b, k))])
                data["diffs"][f"{a}-{baseline}/{k}/{which}"] = ci
                cells.append(fmt_ci(ci))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", data


def plot_grid(data: Dict, labels: Dict[str, str], metric: str, path: str, title: str) -> None:
    """Held-out `metric` (solid, 95% t-interval bars) and the validation selection metric
    (dashed) against the learning rate, one colour per arm; the best rates circled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    rates = data["rates"]
    for i, a in enumerate(labels):
        color = f"C{i}"
        cis = [data["points"][f"{a}@{lr:g}"][metric] for lr in rates]
        mean = np.array([c["mean"] for c in cis])
        err = np.array([[c["mean"] - c["lo"] for c in cis], [c["hi"] - c["mean"] for c in cis]])
        ax.errorbar(rates, mean, yerr=err, color=color, marker="o", capsize=3,
                    label=f"{labels[a]}, held-out {metric}")
        v = [data["points"][f"{a}@{lr:g}"]["validation"]["mean"] for lr in rates]
        ax.plot(rates, v, color=color, ls="--", label=f"{labels[a]}, validation {data['select']}")
        b = data["best"][a]
        ax.plot([b], [v[rates.index(b)]], "o", mfc="none", ms=12, color=color)
    ax.set_xscale("log")
    ax.set_xlabel("RL learning rate")
    ax.set_ylabel(f"{metric} after RL (mean over seeds)")
    ax.legend(fontsize=7)
    save_figure(fig, title, path)


def main(argv=None) -> None:
    """`python -m experiments.lr_grid SWEEP_DIR... --experiment NAME --baseline ARM --matched LR
    [--select KEY] [--metrics K1,K2] [--out DIR] [--stem NAME] [--no_plots]`: the report of the
    grid made by the sweeps (one per rate, or one for all) into DIR/NAME.md, .json and .png (no
    .png with --no_plots). The arms are
    named by experiments/NAME/analyze.py's `grid_arm(overrides, cfg)` when it has one, else by
    the algorithm's name, and labelled by its LABELS."""
    ap = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    ap.add_argument("sweep_dirs", nargs="+")
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--baseline", required=True)
    ap.add_argument("--matched", type=float, required=True)
    ap.add_argument("--select", default="pass@1")
    ap.add_argument("--metrics", default="greedy_acc,pass@1")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stem", default="lr_grid")
    ap.add_argument("--no_plots", action="store_true", help="tables and data only")
    a = ap.parse_args(argv)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), a.experiment, "analyze.py")
    mod = runpy.run_path(script) if os.path.exists(script) else {}
    grid = load_grid(a.sweep_dirs, mod.get("grid_arm", algo_arm))
    labels = {arm: mod.get("LABELS", {}).get(arm, arm)
              for arm in [a.baseline] + sorted(set(grid) - {a.baseline})}
    text, data = grid_report(grid, a.baseline, a.select, a.metrics.split(","), a.matched, labels)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"{a.stem}.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, f"{a.stem}.json"), "w") as f:
        json.dump(data, f, indent=1)
    if not a.no_plots:
        plot_grid(data, labels, a.metrics.split(",")[-1], os.path.join(a.out, f"{a.stem}.png"),
                  f"{a.experiment}: every arm at every rate of the grid")


if __name__ == "__main__":
    main()
