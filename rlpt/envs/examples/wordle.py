"""A Wordle-like game: guess a secret word in a few turns, with per-letter feedback.

After each guess the environment marks every letter: G (right letter, right place), Y (in the
word elsewhere), . (not in the word), e.g. "crane -> .G.Y." Rubric: `solved` (1 when a guess
equals the word) plus 0.5 x `fewer_guesses`, plus 0.1 x `valid_guesses` (the share of turns
that guessed a word of the right length): a small shaping term for formatting.
"""
import re

import numpy as np

from rlpt.envs.environment import Environment
from rlpt.envs.rubric import Rubric

WORDS = ("apple", "bread", "chair", "dance", "eagle", "fruit", "grape", "house", "juice",
         "lemon", "money", "night", "ocean", "piano", "queen", "river", "snake", "table",
         "tiger", "water", "zebra", "cloud", "dream", "earth", "green", "heart", "light",
         "music", "plant", "smile", "stone", "sugar", "train", "watch", "world", "beach")


def feedback(guess: str, secret: str) -> str:
    """G / Y / . per letter (a letter counted at most as often as the secret has it)."""
    marks, left = ["."] * len(secret), {}
    for g, s in zip(guess, secret):
        if g != s:
            left[s] = left.get(s, 0) + 1
    for i, (g, s) in enumerate(zip(guess, secret)):
        if g == s:
            marks[i] = "G"
        elif left.get(g, 0):
            marks[i], left[g] = "Y", left[g] - 1
    return "".join(marks)


def guessed_words(completion, n: int):
    """Each assistant turn's first n-letter word (lower case), None when it has none."""
    out = []
    for m in completion:
        if m["role"] == "assistant":
            found = re.search(rf"\b[a-zA-Z]{{{n}}}\b", m["content"] or "")
            out.append(found.group().lower() if found else None)
    return out


def load_environment(n_rows: int = 600, max_turns: int = 6, seed: int = 0) -> Environment:
    rng = np.random.default_rng(seed)
    secrets = [WORDS[i] for i in rng.integers(len(WORDS), size=n_rows)]
    prompt = ("Let's play Wordle. Guess my secret 5-letter English word. After each guess I "
              "mark every letter: G = right letter in the right place, Y = in the word but "
              "elsewhere, . = not in the word. Reply with one word only.")
    dataset = [{"prompt": prompt, "answer": s} for s in secrets]

    def env_response(state, messages):
        guess = guessed_words(messages, 5)[-1]
        if guess is None:
            return [{"role": "user", "content": "Reply with one 5-letter word."}], False
        if guess == state["answer"]:
            return [{"role": "user", "content": "Solved!"}], True
        return [{"role": "user", "content": f"{guess} -> {feedback(guess, state['answer'])}"}], \
            False

    def solved(completion, answer):
        return float(answer in guessed_words(completion, 5))

    def fewer_guesses(completion, answer):
        g = guessed_words(completion, 5)
        return (max_turns - g.index(answer)) / max_turns if answer in g else 0.0

    def valid_guesses(completion):
        g = guessed_words(completion, 5)
        return sum(w is not None for w in g) / max(len(g), 1)

    return Environment(dataset=dataset,
                       rubric=Rubric([solved, fewer_guesses, valid_guesses], [1.0, 0.5, 0.1]),
                       env_response=env_response, max_turns=max_turns, name="wordle")
