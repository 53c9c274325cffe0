"""Moved to :mod:`experiments.studies.jko_studies`; ``python -m experiments.jko_studies`` still runs it."""
from experiments.studies.jko_studies import *  # noqa: F401,F403
from experiments.studies.jko_studies import main

if __name__ == "__main__":
    main()
