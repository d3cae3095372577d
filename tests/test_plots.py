"""The run and sweep figures (rlpt.report, rlpt.sweep.report): titles and axis labels on every
panel, and bands over seeds that stay within the metric's range."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

from rlpt.report import curves_figure as run_figure, write_report
from rlpt.sweep.report import band, band_range, curves_figure, plot, t_interval


def _labelled(fig):
    assert fig._suptitle is not None and fig._suptitle.get_text()
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax


def test_band_of_accuracies_near_1_stays_in_0_1():
    """Seeds at 0.98, 1.0, 0.9: the raw t-interval reaches 1.09; the band is clipped to [0, 1]."""
    seeds = [[0.98, 0.5], [1.0, 0.6], [0.9, 0.55]]  # [seed][step]
    assert t_interval([0.98, 1.0, 0.9])["hi"] > 1.0
    for key in ("greedy_acc", "pass@1", "accuracy", "stopped_frac", "call_rate"):
        b = band(key, seeds)
        assert b["range"] == (0.0, 1.0) and b["n"] == 3
        assert 0.0 <= b["lo"][0] <= b["mean"][0] <= b["hi"][0] == 1.0
        raw = t_interval([0.5, 0.6, 0.55])   # a band inside [0, 1] is left as it is
        assert (b["lo"][1], b["hi"][1]) == pytest.approx((raw["lo"], raw["hi"]))
    b = band("reward_mean", seeds)  # a 0/1 reward: every value in [0, 1]
    assert b["range"] == (0.0, 1.0) and b["hi"][0] == 1.0


def test_a_shaped_negative_reward_is_not_clipped_to_0():
    """An overlong penalty makes rewards negative: the band is clipped to the observed range."""
    seeds = [[-0.3, 0.2], [-0.1, 0.5], [-0.5, 0.9]]
    assert band_range("reward_mean", np.ravel(seeds)) == (-0.5, 0.9)
    b = band("reward_mean", seeds)
    assert b["lo"][0] == -0.5 and b["lo"][0] < 0.0 and b["hi"][1] == 0.9
    assert band("loss", [[3.0], [1.0]])["range"] is None  # a loss: not clipped
    assert band("greedy_acc", [[0.4]]) == {"mean": [0.4], "lo": [0.4], "hi": [0.4], "n": 1,
                                           "range": (0.0, 1.0)}


def _rows(seed, acc):
    return ([{"phase": "sft", "step": s, "loss": 2.0 / s + 0.1 * seed} for s in (1, 2, 3)]
            + [{"phase": "rl", "step": s, "reward_mean": min(1.0, acc * s / 2)} for s in (1, 2)]
            + [{"phase": "eval", "step": s, "greedy_acc": acc, "pass@1": acc - 0.02 * s}
               for s in (0, 2)])


def test_sweep_figure_has_titles_labels_and_bands_in_0_1(tmp_path):
    accs = {"lr=1,seed=0": 0.98, "lr=1,seed=1": 1.0, "lr=1,seed=2": 0.9,
            "lr=2,seed=0": 0.1, "lr=2,seed=1": 0.0, "lr=2,seed=2": 0.3}
    rows = {n: _rows(i % 3, a) for i, (n, a) in enumerate(accs.items())}
    settings = [{"label": f"lr={lr}", "points": [f"lr={lr},seed={s}" for s in range(3)],
                 "stopped": []} for lr in (1, 2)]
    fig = curves_figure(settings, rows, "sweep demo")
    _labelled(fig)
    assert fig._suptitle.get_text().startswith("sweep demo: SFT loss, RL train reward")
    loss, reward, greedy, pass1 = fig.axes
    assert loss.get_ylabel() == "loss (nats/token)" and greedy.get_xlabel() == "RL step"
    assert "over 3 seeds, not clipped" in loss.get_title()
    for ax in (reward, greedy, pass1):
        assert "95% t-interval over 3 seeds, clipped to [0, 1]" in ax.get_title()
        assert len(ax.collections) == 2   # one band per setting
        for band_poly in ax.collections:
            y = np.concatenate([p.vertices[:, 1] for p in band_poly.get_paths()])
            assert y.min() >= 0.0 and y.max() <= 1.0
    plot(settings, rows, str(tmp_path / "curves.png"))
    assert os.path.getsize(tmp_path / "curves.png") > 10_000


def test_run_figure_has_titles_and_labels(tmp_path):
    fig = run_figure(_rows(0, 0.5), "grpo on countdown (seed 0)")
    _labelled(fig)
    assert [ax.get_xlabel() for ax in fig.axes] == ["SFT step", "RL step", "RL step"]
    assert fig.axes[0].get_ylabel() == "loss (nats/token)"
    cfg = SimpleNamespace(algo=SimpleNamespace(name="grpo"), task=SimpleNamespace(name="add"),
                          seed=3)
    write_report(str(tmp_path), _rows(0, 0.5), cfg)
    assert open(tmp_path / "results.md").read().startswith("# grpo on add (seed 3)")
    assert os.path.getsize(tmp_path / "curves.png") > 10_000


def test_results_table_names_the_first_evaluation_by_what_came_before_it():
    from rlpt.report import results_table
    evals = [{"phase": "eval", "step": 0, "greedy_acc": 0.25},
             {"phase": "eval", "step": 2, "greedy_acc": 0.5}]
    assert "| after SFT | 0 | 0.250 |" in results_table([{"phase": "sft", "step": 1}] + evals)
    no_sft = results_table([{"phase": "rl", "step": 1}] + evals)
    assert "| before RL | 0 | 0.250 |" in no_sft and "| after RL | 2 | 0.500 |" in no_sft


def test_sweep_table_intervals_stay_within_the_metrics_range():
    """The table printed `0.960 [0.829, 1.091]` for seeds at 0.98, 1.0, 0.9 (issue 30)."""
    from rlpt.sweep.report import _fmt, t_interval
    ci = t_interval([0.98, 1.0, 0.9])
    assert ci["hi"] > 1.0                                   # the raw interval leaves [0, 1]
    assert _fmt(ci, "greedy_acc") == f"{ci['mean']:.3f} [{ci['lo']:.3f}, 1.000]"
    assert _fmt(ci, "loss") == f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"


def test_run_figure_plots_only_rates_on_the_eval_axis():
    """An environment's eval rows hold a mean reward and a turn count beside its rates: only
    the rates share the 'fraction of prompts' axis; a run without SFT says so."""
    rows = [{"phase": "eval", "step": s, "greedy_acc": 0.1 * s, "greedy_reward": 1.5,
             "greedy_turns": 4.0, "pass@4": 0.2} for s in (0, 1)]
    rows += [{"phase": "rl", "step": 1, "reward_mean": 0.3}]
    fig = run_figure(rows, "env demo")
    _labelled(fig)
    labels = [l.get_label() for l in fig.axes[2].get_lines()]
    assert labels == ["greedy_acc", "pass@4"]
    assert "no SFT phase" in fig.axes[0].texts[0].get_text()
