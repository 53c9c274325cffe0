"""Moved to :mod:`experiments.studies.jko_convergence`; ``python -m experiments.jko_convergence`` still runs it."""
from experiments.studies.jko_convergence import *  # noqa: F401,F403
from experiments.studies.jko_convergence import main

if __name__ == "__main__":
    main()
