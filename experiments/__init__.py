"""Paper reproductions: one directory per experiment (README with the claim, the command, the
tables and the verdict; analyze.py; archived results). `experiments.analysis` reads a finished
sweep for those analyses; an analyze.py run as `python experiments/X/analyze.py SWEEP_DIR` puts
the repository root on sys.path to import it."""
