"""pass@k curves of SmolLM2-135M-Instruct before and after GRPO, from a sweep of
configs/smollm2_passk.py:

    python experiments/smollm2_passk/analyze.py runs/smollm2_passk [--out DIR]

(DIR defaults to runs/smollm2_passk/analysis/.) The tables and plot of experiments/yue_passk's
analysis (pass@k per k before and after RL, the paired difference, the crossing point per seed),
with the policy at RL step 0 named for what it is here: the pretrained base model, evaluated on
the same draws in every seed (eval.seed), so its interval has width 0 and each seed's
difference is taken against the same base numbers. Writes passk.md, passk.json, passk.png.
"""
import functools
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments.analysis import analysis_main  # noqa: E402

YUE = runpy.run_path(os.path.join(ROOT, "experiments", "yue_passk", "analyze.py"))
BEFORE = ("base model", "base")
TITLE = "Word problems (addends 2-29), SmolLM2-135M-Instruct, GRPO: pass@k before / after RL"

if __name__ == "__main__":
    analysis_main(__file__, "passk", functools.partial(YUE["analyze"], before=BEFORE),
                  functools.partial(YUE["plot"], before=BEFORE, title=TITLE))
