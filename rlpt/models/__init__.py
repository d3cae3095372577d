"""Decoder-only transformer, presets and checkpoint loaders."""
from rlpt.models.checkpoints import (checkpoint_kind, has_own_tokenizer,  # noqa: F401
                                     load_checkpoint)
from rlpt.models.config import PRESETS, ModelConfig, get_model_config  # noqa: F401
from rlpt.models.transformer import (Transformer, causal_mask, forward, init_cache,  # noqa: F401
                                     init_params, positions_from_mask, token_logprobs)
