"""`python -m rlpt.sweep --config=configs/x.py:arg --workdir=DIR` (rlpt.sweep.main)."""
from rlpt.sweep.main import main

if __name__ == "__main__":
    main()
