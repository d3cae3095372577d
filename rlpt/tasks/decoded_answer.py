"""The reward of tasks whose answers are checked as text (GSM8K, the word problems): the
completion and the gold answer are decoded with the task's real tokenizer, and the host math
verifier (`rlpt.rewards.math_answer.gsm8k_reward`) compares them."""
import numpy as np

from rlpt.rewards import math_answer


class DecodedAnswerReward:
    """Mixin of a task with a `tokenizer` (an HFTokenizer): `completion_text` and
    `host_reward(tokens, mask, target, target_len) -> float32 [N]`."""

    def completion_text(self, tokens, mask) -> str:
        """The completion as the verifier reads it: model tokens (mask > 0) up to the eos."""
        return self.tokenizer.decode(np.asarray(tokens)[np.asarray(mask) > 0], stop_at_eos=True)

    def host_reward(self, tokens, mask, target, target_len) -> np.ndarray:
        """`gsm8k_reward(decoded completion, decoded gold answer)` per row, float32 [N]."""
        out = np.zeros(tokens.shape[0], np.float32)
        for i in range(tokens.shape[0]):
            gold = self.tokenizer.decode(target[i][: int(target_len[i])], stop_at_eos=False)
            out[i] = math_answer.gsm8k_reward(self.completion_text(tokens[i], mask[i]), gold)
        return out
