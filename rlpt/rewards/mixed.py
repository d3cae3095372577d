"""A mixed verifiable + preference reward: the rows of one task component are scored by a trained
reward model, every other row by the task's own rule (Lanchantin et al., arXiv 2506.21495: RL on
verifiable math with a rule reward and on non-verifiable instructions with a reward model, in
one run).

    c.task.name = "transfer"                  # rows labelled by component (rlpt.tasks.transfer)
    c.task.kwargs.train = -1                  # RL batches mix every component
    c.reward.kind = "reward_model"
    c.reward.rm_workdir = "runs/rm_mult"      # the reward model (rlpt.preference.train)
    c.reward.rm_component = 1                 # its rows get the RM's score, the rest the rule

The batch carries `[prompt | gold target | route]` in `target` (`route` = 1 on the rows the
reward model scores: `with_route`), and the reward is

    r_i = RM(prompt_i, completion_i)   if route_i
          rule(completion_i, gold_i)   otherwise.

The two scales differ, but a group (the samples of one prompt) never mixes them, so a
group-normalised advantage (GRPO) or a pair built within a group is unaffected. aux: the reward
model's (rm_score, true_reward, correct: the rule on every row, never optimised where the RM
scores) and `rm_row` (1 on the rows the RM scored).
"""
from typing import Dict

import jax.numpy as jnp
import numpy as np

from rlpt.errors import UserError


def with_route(batch: Dict, component: int) -> Dict:
    """A `prompt_with_target` batch with one more `target` column: 1 where the row's component
    (`batch["difficulty"]`, rlpt.tasks.transfer) is `component`, else 0."""
    if "difficulty" not in batch:
        raise UserError("config reward.rm_component: the task's RL batches carry no component "
                        "label ('difficulty'); use the transfer task (rlpt.tasks.transfer) or "
                        "leave reward.rm_component at -1")
    route = (np.asarray(batch["difficulty"]) == component).astype(np.int32)
    out = dict(batch)
    out["target"] = np.concatenate([np.asarray(batch["target"], np.int32), route[:, None]], 1)
    return out


def routed_reward(rm_and_task_reward):
    """`reward(frozen, tokens, mask, target, target_len)` of a `with_route` batch (module doc);
    `rm_and_task_reward` is rlpt.preference.reward_model.reward_model_and_task_reward's."""
    def reward(frozen, tokens, mask, target, target_len):
        target = jnp.asarray(target, jnp.int32)
        route = target[:, -1] > 0
        r_rm, aux = rm_and_task_reward(frozen, tokens, mask, target[:, :-1], target_len)
        r = jnp.where(route, r_rm, jnp.asarray(aux["true_reward"], jnp.float32))
        return r, {**aux, "rm_row": route.astype(jnp.float32)}
    return reward
