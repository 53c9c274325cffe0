"""Moved to :mod:`experiments.studies.table_regret`; ``python -m experiments.table_regret RUN`` still runs it."""
import sys

from experiments.studies.table_regret import *  # noqa: F401,F403
from experiments.studies.table_regret import main

if __name__ == "__main__":
    sys.exit(main())
