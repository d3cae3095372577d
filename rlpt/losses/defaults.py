"""Per-algorithm default hyperparameters (objectives.md §2-3) and config resolution for losses.

`default_algo_config(name)` returns a fresh `ml_collections.ConfigDict` with the paper defaults of
algorithm `name`; experiment configs start from it and override fields. Values marked
"not in spec" are not given by objectives.md and are this codebase's choice.

`resolve(cfg, name)` is what every registered loss calls: the defaults of `name` overlaid with
whatever fields `cfg` sets (a ConfigDict, a dict or any attribute object; None = all defaults),
so a config may set only the fields it changes.
"""
import types

import ml_collections

_COMMON = dict(
    # clipped surrogate
    eps_low=0.2,              # ratio >= 1 - eps_low
    eps_high=0.2,             # ratio <= 1 + eps_high
    dual_clip=None,           # c for the A<0 dual clip (verl clip_ratio_c); None = off
    log_ratio_clamp=20.0,     # verl clamps logp - old_logp to [-20, 20] before exp
    # KL to the reference policy, inside the loss
    beta=0.0,
    kl_estimator="k3",        # k1 | k2 | k3 (aliases kl, mse, low_var_kl)
    kl_clamp=False,           # verl's k3 clamp (d in [-20, 20], k3 <= 10)
    # aggregation
    loss_agg="seq_mean_token_mean",
    l_norm=None,              # seq_mean_token_sum_norm constant; None = T (max new tokens)
    entropy_coef=0.0,         # loss -= entropy_coef * aggregate(entropy)
    # advantages: `advantage` names the ("advantage", name) registry entry whose output the
    # trainer puts in batch["advantages"]; the fields below are read by those estimators
    advantage="grpo",
    group_size=8,             # not in spec unless overridden below
    ddof=1,
    eps=1e-6,
    success_threshold=0.0,    # a sample counts as correct/successful when reward > this
    # whether the KL / entropy terms exist (static; None = decided from beta / entropy_coef
    # by rlpt.config.validate, or by the loss for a plain config of numbers)
    kl_term=None,
    entropy_term=None,
)

_ALGOS = {
    "ppo": dict(advantage="gae", loss_agg="token_mean", dual_clip=3.0, vf_coef=0.5,
                cliprange_value=0.2, gamma=1.0, lam=1.0, kl_coef=0.0, whiten=True,
                group_size=1),  # vf_coef/cliprange_value 0.5/0.2: not in spec (baselines)
    "grpo": dict(beta=0.04, group_size=64),
    "dr_grpo": dict(advantage="dr_grpo", loss_agg="seq_mean_token_sum_norm"),
    "dapo": dict(eps_high=0.28, loss_agg="token_mean", group_size=16, dynamic_sampling=True,
                 dynamic_sampling_atol=0.0, overlong_max=20480, overlong_cache=4096,
                 reward_correct=1.0, reward_wrong=-1.0,
                 shaping=("dapo_reward_pm1", "dapo_overlong")),  # applied by the fused step
    "gspo": dict(eps_low=3e-4, eps_high=4e-4, log_ratio_clamp=10.0),
    "gspo_token": dict(eps_low=3e-4, eps_high=4e-4, log_ratio_clamp=10.0),
    "gmpo": dict(eps_low=0.4, eps_high=0.4),
    "gtpo": dict(advantage="gtpo", eps_high=0.28, loss_agg="token_mean", alpha1=1.0, alpha2=0.1,
                 entropy_shaping_norm="separate"),
    "grpo_s": dict(advantage="grpo_s", eps_high=0.28, loss_agg="token_mean", alpha1=1.0,
                   alpha2=0.1, entropy_shaping_norm="separate", ratio_level="token"),
    # the loss builds its own baseline from batch["rewards"]; "dr_grpo" (r - mean) is the matching
    # advantage for logging. The length reward is reward shaping ("kimi_length_penalty").
    "kimi_k15": dict(advantage="dr_grpo", tau=1.0,  # tau: not in spec
                     normalize_2tau=False, length_penalty_weight=1.0,
                     length_penalty_start=0,
                     shaping=("kimi_length_penalty",)),
    "kdrl": dict(loss_agg="token_mean", kd_beta_init=5e-3, kd_beta_min=1e-3, kd_beta_delta=5e-5,
                 kd_mask="incorrect_response"),
    "exp_grpo": dict(beta=0.04, sft_coef=0.1,  # sft_coef (the ExPO beta): not in spec
                     sft_loss_agg="seq_mean_token_sum", sft_anneal_steps=0),
    "mgrpo": dict(beta=0.04, layer2_coef=1.0),
    "uft": dict(beta=0.04, sft_coef=1e-3, sft_loss_agg="token_mean", hint_p_low=0.05,
                hint_p_high=0.95, hint_steps=300, max_hint_chunks=5),
    "relift": dict(advantage="dr_grpo", loss_agg="seq_mean_token_sum_norm",
                   sft_entropy_coef=1e-3, sft_buffer_size=128),
    "relift_sft": dict(loss_agg="token_mean", entropy_coef=1e-3),
    "one_shot_rlvr": dict(beta=1e-3, kl_estimator="k3", entropy_coef=1e-3, group_size=8,
                          temperature=0.6, loss_agg="token_mean"),
    "sft": dict(loss_agg="token_mean"),
}

ALGO_NAMES = tuple(sorted(_ALGOS))


def default_algo_config(name: str) -> ml_collections.ConfigDict:
    """Paper defaults of algorithm `name` (see the table above) as a new ConfigDict."""
    if name not in _ALGOS:
        raise KeyError(f"no default config for {name!r}; known: {list(ALGO_NAMES)}")
    fields = dict(_COMMON, name=name, **_ALGOS[name])
    return ml_collections.ConfigDict(fields)


def _items(cfg):
    if cfg is None:
        return {}
    if hasattr(cfg, "items"):
        return dict(cfg.items())
    return {k: v for k, v in vars(cfg).items() if not k.startswith("_")}


def algo_fields(name: str, extra=None) -> dict:
    """The common defaults, those of `name` (when this table has it) and `extra` (an
    algorithm's own, for algorithms defined in one file of rlpt/algorithms)."""
    return dict(_COMMON, name=name, **_ALGOS.get(name, {}), **dict(extra or {}))


def resolve(cfg, name: str, extra=None) -> types.SimpleNamespace:
    """Defaults of `name` (and `extra`) overlaid with the fields `cfg` sets, as a plain
    attribute object."""
    fields = algo_fields(name, extra)
    fields.update(_items(cfg))
    return types.SimpleNamespace(**fields)
