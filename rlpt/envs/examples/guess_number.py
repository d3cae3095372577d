"""Guess the number: a multi-turn game with feedback per guess (a Wordle-like protocol on a task a
small model can learn: binary search).

The user thinks of a whole number in [low, high]; the model replies with a guess; the
environment answers "Higher." or "Lower." (or asks again for one number) until the guess is
right or the turns run out. Rubric: `solved` (1 when some guess is right) plus 0.5 x
`fewer_guesses` ((max_turns - guesses used) / max_turns when solved, else 0). Demonstration:
binary search (an SFT warm-up's gold episodes).
"""
import re

import numpy as np

from rlpt.envs.environment import Environment
from rlpt.envs.rubric import Rubric

NUMBER = re.compile(r"-?\d+")


def guesses(completion):
    """The number each assistant turn guessed (its first whole number; None when it has none)."""
    out = []
    for m in completion:
        if m["role"] == "assistant":
            found = NUMBER.search(m["content"] or "")
            out.append(int(found.group()) if found else None)
    return out


def load_environment(n_rows: int = 600, low: int = 1, high: int = 16, max_turns: int = 4,
                     seed: int = 0) -> Environment:
    rng = np.random.default_rng(seed)
    secrets = rng.integers(low, high + 1, size=n_rows)
    prompt = (f"I am thinking of a whole number from {low} to {high}. Guess it. After each "
              "guess I will say Higher or Lower. Reply with one number only.")
    dataset = [{"prompt": prompt, "answer": str(int(s))} for s in secrets]

    def env_response(state, messages):
        guess = guesses(messages)[-1]
        secret = int(state["answer"])
        if guess is None:
            return [{"role": "user", "content": "Reply with one whole number."}], False
        if guess == secret:
            return [{"role": "user", "content": "Correct!"}], True
        return [{"role": "user", "content": "Higher." if guess < secret else "Lower."}], False

    def solved(completion, answer):
        return float(int(answer) in guesses(completion))

    def fewer_guesses(completion, answer):
        g = guesses(completion)
        if int(answer) not in g:
            return 0.0
        return (max_turns - g.index(int(answer))) / max_turns

    def binary_search(row):
        """The demonstration: guess the middle of what is left, until right or out of turns."""
        lo, hi, secret, out = low, high, int(row["answer"]), []
        for _ in range(max_turns):
            guess = (lo + hi) // 2
            out.append({"role": "assistant", "content": str(guess)})
            if guess == secret:
                out.append({"role": "user", "content": "Correct!"})
                break
            out.append({"role": "user", "content": "Higher." if guess < secret else "Lower."})
            lo, hi = (guess + 1, hi) if guess < secret else (lo, guess - 1)
        return out

    return Environment(dataset=dataset, rubric=Rubric([solved, fewer_guesses], [1.0, 0.5]),
                       env_response=env_response, max_turns=max_turns, name="guess_number",
                       demonstration=binary_search)
