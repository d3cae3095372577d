"""Environment tasks through the trainer (rlpt.tasks.env_task, rlpt.env_step): reasoning-gym
datasets with their own `score_answer`, and the example games, each a real `rlpt.train` run
(a tiny random model over SmolLM2-135M-Instruct's tokenizer and chat template)."""
import json
import os

import pytest

from conftest import SHARED_DATA
from rlpt.errors import UserError

GGUF = os.path.join(SHARED_DATA, "smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
pytestmark = pytest.mark.skipif(not os.path.isfile(GGUF), reason=f"{GGUF} not present")


def _has(module):
    import importlib.util
    return importlib.util.find_spec(module) is not None


def quick_cfg(game, **over):
    from configs.env_games import get_config
    c = get_config(f"game={game},quick=1,preset=tiny,lora=0" + "".join(
        f",{k}={v}" for k, v in over.items()))
    c.rl.steps, c.eval.n_prompts, c.eval.n_samples, c.eval.ks = 1, 2, 2, (1, 2)
    return c


@pytest.mark.parametrize("dataset", ["chain_sum", "basic_arithmetic"])
def test_reasoning_gym_dataset_scores_with_its_own_verifier(dataset):
    pytest.importorskip("reasoning_gym")
    from rlpt.envs.reasoning_gym import load_environment
    env = load_environment(dataset=dataset, size=20, seed=3)
    rows = env.dataset[:4]
    def rollout(text, row):
        return {"prompt": env.prompt_messages(row), "answer": row["answer"], "state": {},
                "info": row["info"],
                "completion": [{"role": "assistant", "content": text}]}
    right = [rollout(f"<answer>{r['answer']}</answer>", r) for r in rows]
    wrong = [rollout(f"<answer>{r['answer']}1</answer>", r) for r in rows]
    untagged = [rollout(r["answer"], r) for r in rows]
    assert list(env.rubric.score(right, 1)[0]) == [1.0] * 4
    import reasoning_gym
    data = reasoning_gym.create_dataset(dataset, size=20, seed=3)
    own = [data.score_answer(f"{r['answer']}1", data[i]) for i, r in enumerate(rows)]
    assert list(env.rubric.score(wrong, 1)[0]) == pytest.approx(own) and max(own) < 1
    assert list(env.rubric.score(untagged, 1)[0]) == [0.0] * 4
    assert "<answer>" in env.prompt_messages(rows[0])[0]["content"]   # the system prompt


@pytest.mark.parametrize("game,over", [
    ("reasoning_gym", {"dataset": "chain_sum"}),
    pytest.param("reasoning_gym", {"dataset": "basic_arithmetic"}, marks=pytest.mark.slow),
    pytest.param("guess_number", {}, marks=pytest.mark.slow)])   # multi-turn: test_env_multiturn
def test_one_rl_step_through_rlpt_train(tmp_path, game, over):
    if game == "reasoning_gym":
        pytest.importorskip("reasoning_gym")
    from rlpt.train import run
    summary = run(quick_cfg(game, **over), str(tmp_path))
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    rl = [r for r in rows if r["phase"] == "rl"]
    assert len(rl) == 1 and "pass@2" in summary["after_rl"]
    m = rl[0]
    first = "rubric/score_answer" if game == "reasoning_gym" else "rubric/solved"
    assert first in m and m[f"{first}_errors"] == 0 and m["env/errors"] == 0
    assert m["turns"] == (1.0 if game == "reasoning_gym" else m["env/turns"])
    assert m["grad_norm"] >= 0 and m["response_len"] > 0


def test_bad_env_task_configs(tmp_path):
    from rlpt.build import build_task
    from rlpt.tasks.env_task import EnvTask
    cfg = quick_cfg("reasoning_gym") if _has("reasoning_gym") else None
    if cfg is not None:   # reasoning-gym environments have no demonstrations
        cfg.sft.steps = 10
        with pytest.raises(UserError, match="sft.steps=10: environment 'reasoning_gym/chain_sum' "
                                            "has no demonstration"):
            build_task(cfg)
    with pytest.raises(UserError, match="expected 'module:function'"):
        EnvTask(env="rlpt.envs.examples.guess_number", tokenizer_path=GGUF)
    with pytest.raises(UserError, match="task.kwargs.env=.*AttributeError"):
        EnvTask(env="rlpt.envs.examples.guess_number:nope", tokenizer_path=GGUF)
    with pytest.raises(UserError, match="n_heldout=600"):
        EnvTask(env="rlpt.envs.examples.guess_number:load_environment", tokenizer_path=GGUF,
                n_heldout=600)
    pytest.importorskip("reasoning_gym")
    with pytest.raises(UserError, match="reasoning-gym dataset 'no_such_set'"):
        EnvTask(env="rlpt.envs.reasoning_gym:load_environment", tokenizer_path=GGUF,
                env_kwargs=dict(dataset="no_such_set"))


def test_wordle_feedback():
    from rlpt.envs.examples.wordle import feedback, load_environment
    assert feedback("crane", "crane") == "GGGGG"
    assert feedback("apple", "grape") == "YY..G"   # 'grape' has one p: the second p is '.'
    assert feedback("eerie", "there") == "Y.Y.G"
    assert feedback("zzzzz", "apple") == "....."
    env = load_environment(n_rows=3)
    state = env.initial_state(env.dataset[0])
    msgs, done = env.env_response(state, [{"role": "assistant", "content": "crane"}])
    assert not done and msgs[0]["content"].startswith("crane -> ")
    msgs, done = env.env_response(state, [{"role": "assistant", "content": state["answer"]}])
    assert done


def test_textarena_game_as_an_environment():
    pytest.importorskip("textarena")
    from rlpt.envs.textarena_env import load_environment
    env = load_environment("GuessTheNumber-v0", n_rows=3, seed=1, max_turns=10)
    assert "Guess The Number" in env.dataset[0]["prompt"]
    state = env.initial_state(env.dataset[0])
    lo, hi, completion = 1, 20, []
    for _ in range(10):   # binary search through the environment's protocol
        guess = (lo + hi) // 2
        completion.append({"role": "assistant", "content": f"I guess [{guess}]"})
        msgs, done = env.env_response(state, completion)
        completion += msgs
        if done:
            break
        assert msgs[0]["content"].startswith("[GAME] The target number is")
        assert "[Player]" not in msgs[0]["content"]
        lo, hi = (guess + 1, hi) if "higher" in msgs[0]["content"] else (lo, guess - 1)
    assert done and state["reward"] == 1.0
    other = env.initial_state(env.dataset[0])   # every episode plays its own game
    for _ in range(3):   # the game warns once, then ends on a second unreadable move
        _, done = env.env_response(other, [{"role": "assistant", "content": "no number"}])
        if done:
            break
    assert done and other["invalid"] and other["reward"] == 0.0
    r, m = env.rubric.score([{"prompt": [], "completion": completion, "answer": None,
                              "state": s, "info": {}} for s in (state, other)], 1)
    assert list(r) == [1.0, 0.0] and m["rubric/invalid_move"] == 0.5
    with pytest.raises(UserError, match="env_id='no-such-game'"):
        load_environment("no-such-game", n_rows=1)


@pytest.mark.parametrize("game", ["guess_number", "two_tools"])
def test_demonstrations_are_what_the_template_renders(game):
    """`demonstration_ids`: the prompt's ids then the demonstration's are the template's rendering
    of the whole conversation (up to the text after the last end-of-turn); the loss mask is 1 on
    exactly the assistant turns' ids (text and end-of-turn token), 0 on the replies."""
    import importlib
    from rlpt.envs.environment import Chat, demonstration_ids
    from rlpt.tokenizers import load_tokenizer
    tok = load_tokenizer(GGUF)
    chat = Chat(tok)
    env = importlib.import_module(f"rlpt.envs.examples.{game}").load_environment(n_rows=6)
    for row in env.dataset:
        ids, mask = demonstration_ids(env, chat, row)
        demo = env.demonstration(row)
        last = max(i for i, m in enumerate(demo) if m["role"] == "assistant")
        prompt = chat.prompt_ids(env.prompt_messages(row), env.tools)
        full = tok.encode(chat.render(env.prompt_messages(row) + demo[:last + 1], False,
                                      env.tools))
        assert full[:len(prompt) + len(ids)] == prompt + ids
        assert tok.decode(full[len(prompt) + len(ids):]).strip() == ""
        turns = [chat.assistant_ids(m["content"], i == last) for i, m in enumerate(demo)
                 if m["role"] == "assistant"]
        assert [t for t, m in zip(ids, mask) if m] == [t for turn in turns for t in turn]
        assert 0 < sum(mask) < len(mask) and len(turns) >= 2


def test_sft_batch_and_a_warm_up_then_rl_through_rlpt_train(tmp_path):
    """guess_number's demonstrations (binary search) as the SFT warm-up of `rlpt.train`: the
    batch's loss mask is a subset of its valid mask; 3 SFT steps lower nothing to NaN and hand
    over to an RL step; a demonstration longer than solution_len is refused naming its row."""
    from rlpt.build import build_task
    from rlpt.train import run
    cfg = quick_cfg("guess_number")
    cfg.sft.steps, cfg.sft.batch_size = 3, 4
    task = build_task(cfg)
    b = task.sft_batch(0, 0, 4)
    assert b["solution"].shape == (4, task.solution_len)
    assert (b["solution_loss_mask"] <= b["solution_mask"]).all() and b["solution_loss_mask"].any()
    run(cfg, str(tmp_path))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    sft = [r for r in rows if r["phase"] == "sft"]
    assert len(sft) == 3 and all(r["loss"] > 0 for r in sft)
    assert [r["phase"] for r in rows].count("rl") == 1
    cfg.task.kwargs.solution_len = 8
    with pytest.raises(UserError, match="demonstration of dataset row .* more than task.kwargs."
                                        "solution_len=8"):
        build_task(cfg).sft_batch(0, 0, 4)
