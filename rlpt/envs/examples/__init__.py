"""Example Python environments, each a `load_environment(**kwargs) -> Environment` (the form
`task.kwargs.env` names): guess_number (higher/lower feedback per guess), wordle (letter feedback
per guessed word)."""
