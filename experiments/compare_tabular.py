"""Moved to :mod:`experiments.studies.compare_tabular`; ``python -m experiments.compare_tabular`` still runs it."""
from experiments.studies.compare_tabular import *  # noqa: F401,F403
from experiments.studies.compare_tabular import main

if __name__ == "__main__":
    main()
