"""Plays episodes of an example environment with a checkpoint and prints them with the rubric's
scores: the pilot that says whether a model gets any reward signal from an environment.

    python scripts/show_episodes.py --game two_tools --turn_tokens 48 --prompts 8 --samples 4

Checkpoint: SmolLM2-135M-Instruct (../shared/data/smollm2) unless --checkpoint; sampling at
temperature 1 with PRNGKey(--seed); environments from rlpt.envs.examples (their defaults).
"""
import argparse
import importlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402

from configs.smollm2_rlvr import SMOLLM2  # noqa: E402
from rlpt.envs.environment import Chat, prompt_batch  # noqa: E402
from rlpt.envs.multiturn import EnvRunner  # noqa: E402
from rlpt.models import load_checkpoint  # noqa: E402
from rlpt.sampling import SamplingConfig  # noqa: E402
from rlpt.tokenizers import load_tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--game", default="guess_number")
    ap.add_argument("--checkpoint", default=SMOLLM2)
    ap.add_argument("--turn_tokens", type=int, default=10)
    ap.add_argument("--max_reply", type=int, default=32)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=6, help="episodes printed in full")
    ap.add_argument("--env_kwargs", default="{}", help="JSON: load_environment's arguments")
    a = ap.parse_args()
    env = importlib.import_module(f"rlpt.envs.examples.{a.game}").load_environment(
        **json.loads(a.env_kwargs))
    tok = load_tokenizer(a.checkpoint)
    chat = Chat(tok)
    model_cfg, params = load_checkpoint(a.checkpoint)
    T = env.max_turns * a.turn_tokens + (env.max_turns - 1) * a.max_reply
    scfg = SamplingConfig(max_new_tokens=T, num_samples=a.samples, stop_tokens=(tok.eos_id,),
                          pad_id=tok.pad_id)
    runner = EnvRunner(env, chat, model_cfg, scfg, a.turn_tokens, a.max_reply)
    batch = prompt_batch(env, chat, list(range(a.prompts)), 512, tok.pad_id)
    _, eps, m = runner.rollout(params, batch, jax.random.PRNGKey(a.seed))
    for ep in eps[:a.show]:
        print(f"--- answer {ep['answer']}")
        for msg in ep["completion"]:
            print(f"  [{msg['role']}] {msg['content']!r}")
    r, rm = env.rubric.score(eps, a.samples)
    print(f"\n{a.game}: {len(eps)} episodes ({a.prompts} prompts x {a.samples})")
    print("rollout:", {k: round(v, 3) for k, v in m.items()})
    print("rubric:", {k: round(v, 3) for k, v in rm.items() if not k.endswith("_errors")})
    print(f"reward > 0 in {int((r > 0).sum())} of {len(r)} episodes; mean {r.mean():.3f}")


if __name__ == "__main__":
    main()
