"""A single-player `textarena` game (PyPI `textarena`, 0.7.x: `pip install rlpt[textarena]`) as a
multi-turn rlpt environment.

    c.task.kwargs.env = "rlpt.envs.textarena_env:load_environment"
    c.task.kwargs.env_kwargs = dict(env_id="GuessTheNumber-v0", max_turns=10)

Each dataset row is one game, `textarena.make(env_id)` reset with its own seed (`seed * 10**6 +
row`); the prompt is the game's first observation. Every episode plays its own game object
(`setup_state`): a policy turn is passed to `game.step` as the player's move, and the text the
game appends to its observation (its reply, without the echo of the move) comes back as the
next user message. When the game ends, `game.close()` gives player 0's reward and the reason.

Rubric: `game_reward` (textarena's reward for player 0: 1 for a win, 0 for a loss or an invalid
move, as the game defines it), and, weight 0 for the logs, `invalid_move` (the game ended on a
move it could not read). A game that needs data downloaded at run time is refused naming it
(Wordle-v0 here: nltk's `words` corpus is not found without internet).
"""
from rlpt.envs.environment import Environment
from rlpt.envs.rubric import RewardFunc, Rubric
from rlpt.errors import UserError


def _ta():
    try:
        import textarena
    except ImportError:
        raise UserError("rlpt.envs.textarena_env needs textarena: pip install "
                        "'rlpt[textarena]'") from None
    return textarena


def new_game(env_id: str, seed: int):
    """(the game reset with `seed`, its first observation)."""
    game = _ta().make(env_id)
    game.reset(num_players=1, seed=seed)
    _, obs = game.get_observation()
    return game, obs


def game_reply(previous: str, observation: str) -> str:
    """What the game appended to its observation, without the `[Player]` echo of the move."""
    new = observation[len(previous):] if observation.startswith(previous) else observation
    return "\n".join(line for line in new.strip().splitlines()
                     if not line.startswith("[Player]")).strip()


def load_environment(env_id: str = "GuessTheNumber-v0", n_rows: int = 600, seed: int = 0,
                     max_turns: int = 10) -> Environment:
    ta = _ta()
    if env_id not in ta.envs.registration.ENV_REGISTRY:
        raise UserError(f"config task.kwargs.env_kwargs.env_id={env_id!r} is not a textarena "
                        "environment id")
    rows = []
    for i in range(n_rows):
        try:
            _, obs = new_game(env_id, seed * 10 ** 6 + i)
        except LookupError as e:   # nltk data textarena fetches at run time (Wordle-v0)
            first = next((l.strip() for l in str(e).splitlines() if "not found" in l), str(e))
            raise UserError(f"config task.kwargs.env_kwargs.env_id={env_id!r}: the game needs "
                            f"data it downloads at run time ({first})") from None
        rows.append({"prompt": obs.strip(), "info": {"seed": seed * 10 ** 6 + i}})

    def setup_state(row):
        game, obs = new_game(env_id, row["info"]["seed"])
        return {"game": game, "seen": obs, "reward": 0.0, "invalid": False, "reason": ""}

    def env_response(state, messages):
        game = state["game"]
        done, _ = game.step(messages[-1]["content"])
        if done:
            rewards, infos = game.close()
            state["reward"] = float(rewards[0])
            state["invalid"] = bool(infos[0].get("invalid_move", False))
            state["reason"] = str(infos[0].get("reason", ""))
            return [{"role": "user", "content": state["reason"] or "The game is over."}], True
        _, obs = game.get_observation()
        reply = game_reply(state["seen"], obs)
        state["seen"] = obs
        return [{"role": "user", "content": reply or "Your move."}], False

    def game_reward(state):
        return state["reward"]

    def invalid_move(state):
        return float(state["invalid"])

    return Environment(dataset=rows,
                       rubric=Rubric([game_reward, RewardFunc(invalid_move, weight=0.0)]),
                       env_response=env_response, setup_state=setup_state, max_turns=max_turns,
                       name=f"textarena/{env_id}")
