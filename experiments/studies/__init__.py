"""Study scripts: each a config-driven comparison or ablation run with ``python -m experiments.studies.<name>``."""
