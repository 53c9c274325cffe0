"""Study scripts: each a config-driven comparison or ablation run with ``python -m experiments.studies.<name>``.

Their shared plumbing (command line, per-worker caches, summaries) is :mod:`experiments.studies.common`.
"""

from .common import keep_torch_threads, study_parser, write_study  # noqa: F401  (the names of the old module)
