"""The front door: the ``sdot-nas`` CLI and what it stands on.

- :mod:`experiments.config` — TOML configs validated against the live registries;
- :mod:`experiments.runner` — ``run_config(config, out)``: every (method, seed) trial on an executor;
- :mod:`experiments.rundir` — run directories: resolved config, event log, atomic checkpoints, resume;
- :mod:`experiments.executors` — serial / process-pool / Ray executors with per-task seed streams;
- :mod:`experiments.plots`, :mod:`experiments.report` — figures and ``report.md``;
- :mod:`experiments.cli` — ``sdot-nas run | compare | plot | report | list | validate``;
- ``experiments/configs/*.toml`` — one config per study; ``main.toml`` is the main job.
"""
