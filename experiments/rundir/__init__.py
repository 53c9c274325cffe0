"""Run directories that lose nothing: resolved config, append-only event log, data-only checkpoints, resume.

**The event log is the source of truth; checkpoints only save recomputation.** One trial is one call of
:func:`hotnas.optimisers.base.run_search` (the one trial loop of the project) whose hooks append each
evaluation to the log the moment it finishes, close each step after ``tell`` and write a data-only
checkpoint every ``checkpoint_every`` steps; ``--resume`` loads the newest intact checkpoint and lets
``run_search`` replay the evaluations logged after it, so no finished evaluation is run again.

One idea per module:

========================================  =============================================================
:mod:`experiments.rundir.files`           file names, errors, atomic writes, temporary-file cleanup
:mod:`experiments.rundir.checkpoint`      data-only checkpoints (npz + JSON, never a pickle)
:mod:`experiments.rundir.events`          the event log: append, read, repair, replay steps
:mod:`experiments.rundir.lock`            ``run.lock`` (PID, host; stale locks taken over)
:mod:`experiments.rundir.layout`          :class:`RunDir`: create (verified ``--overwrite``), open, config
:mod:`experiments.rundir.trial`           one trial: :class:`TrialSpec`, :func:`run_trial` (hooks on run_search)
:mod:`experiments.rundir.results`         stored results, partial ones rebuilt from the log
========================================  =============================================================
"""

from __future__ import annotations

from .checkpoint import (decode_checkpoint, encode_checkpoint, from_data, load_checkpoint, read_checkpoint,
                         save_checkpoint, to_data)
from .events import read_events, read_log, result_from_events
from .files import (CHECKPOINT, CHECKPOINT_PREV, LOCK_NAME, RUN_FORMAT, RUN_VERSION, SYNC_AFTER_S, CheckpointError,
                    ResumeWarning, RunDirError, atomic_write)
from .layout import RunDir
from .lock import RunLock
from .results import load_trial_results
from .trial import TrialHooks, TrialSpec, build_benchmark, build_optimiser, run_trial

__all__ = ["RunDir", "RunDirError", "CheckpointError", "ResumeWarning", "TrialSpec", "TrialHooks", "RunLock",
           "run_trial", "save_checkpoint", "read_checkpoint", "load_checkpoint", "read_events", "read_log",
           "result_from_events", "load_trial_results", "atomic_write", "build_benchmark", "build_optimiser", "to_data",
           "from_data", "encode_checkpoint", "decode_checkpoint", "RUN_FORMAT", "RUN_VERSION", "SYNC_AFTER_S",
           "CHECKPOINT", "CHECKPOINT_PREV", "LOCK_NAME"]
