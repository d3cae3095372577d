"""Is a refactor free? Compares the optimized HLO of the fused GRPO step (configs/grpo_arith.py
at size nano, 4 prompts x 4 samples) compiled from a git revision and from the working tree.

    python scripts/hlo_ab.py --ref 47f0df0

Each tree compiles in its own subprocess (the revision exported with `git archive`); the texts
are compared after dropping XLA's debug tables and stack-frame ids (file names and line numbers
of the Python that traced an op). "identical" means the two trees run the same program, so a
speed difference between them on this workload is measurement noise; a diff is printed
otherwise. Unlike scripts/bench_ab.py, the answer does not depend on the machine's load.
"""
import argparse
import difflib
import functools
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(tree, out):
    """Compiles the step with the rlpt found in `tree`; writes its HLO text to `out`."""
    sys.path.insert(0, tree)
    import jax
    import rlpt
    if not os.path.abspath(rlpt.__file__).startswith(os.path.abspath(tree)):
        raise SystemExit(f"imported rlpt from {rlpt.__file__}, expected it under {tree}")
    from configs import grpo_arith
    from rlpt.config import validate
    from rlpt.models import get_model_config, init_params
    from rlpt.step import fused_step
    try:
        from rlpt.build import build_rl, build_task
    except ImportError:   # revisions before rlpt/build.py
        from rlpt.train import build_rl, build_task
    cfg = grpo_arith.get_config("size=nano")
    cfg.rl.batch_size, cfg.sampling.num_samples = 4, 4
    cfg = validate(cfg)
    model_cfg = get_model_config("nano")
    spec, state, hp, make_batch = build_rl(cfg, model_cfg,
                                           init_params(model_cfg, jax.random.PRNGKey(0)),
                                           build_task(cfg))
    text = jax.jit(functools.partial(fused_step, spec)).lower(
        state, make_batch(0), hp).compile().as_text()
    with open(out, "w") as f:
        f.write(text)


def program(text):
    """The HLO without debug tables, stack-frame ids and instruction numbers."""
    lines = [l for l in text.splitlines()
             if not re.match(r"^\d+ |^(FileNames|FunctionNames|FileLocations|StackFrames)$", l)]
    out = "\n".join(lines)
    out = re.sub(r",? ?stack_frame_id=\d+", "", out)
    out = re.sub(r", metadata=\{[^}]*\}", "", out)
    return re.sub(r"\.\d+", "", out).splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", help="git revision to compare the working tree against")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    if not a.ref:
        ap.error("--ref is required")
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", ROOT, "archive", a.ref, "rlpt", "configs"],
                                 check=True, capture_output=True).stdout
        ref_tree = os.path.join(tmp, "ref")
        os.makedirs(ref_tree)
        subprocess.run(["tar", "-x", "-C", ref_tree], input=archive, check=True)
        texts = {}
        for name, tree in (("ref", ref_tree), ("working tree", ROOT)):
            out = os.path.join(tmp, name.replace(" ", "_") + ".hlo")
            subprocess.run([sys.executable, __file__, "--child", tree, out], check=True,
                           cwd=tmp, env=dict(os.environ, PYTHONPATH=tree))
            texts[name] = program(open(out).read())
    old, new = texts["ref"], texts["working tree"]
    if old == new:
        print(f"identical: the fused GRPO step of {a.ref} and of the working tree compile to the "
              f"same optimized HLO ({len(new)} lines, debug info dropped)")
        return
    diff = list(difflib.unified_diff(old, new, a.ref, "working tree", lineterm="", n=1))
    print(f"DIFFERENT: {len(diff)} diff lines; the first 60:")
    print("\n".join(diff[:60]))


if __name__ == "__main__":
    main()
