"""Executors with the ``concurrent.futures`` interface: serial (default), a local process pool, and Ray.

Every parallel piece of work in the library — a whole search trial, or one candidate's training —
goes through :func:`make_executor`:

    >>> with make_executor("serial") as ex:
    ...     [round(v, 6) for v in map_seeded(ex, _demo_draw, [1, 2], seed=0)]
    [0.942938, 0.677197]

Results never depend on the executor or on the number of workers: a task's randomness comes from
its own stream, ``np.random.SeedSequence(seed).spawn(n)[i]`` for task ``i`` (:func:`task_seeds`), never
from a worker's global state; and :func:`map_seeded` returns results in task order.

Workers run one thread each (``torch.set_num_threads(1)``, ``OMP/MKL/OPENBLAS_NUM_THREADS=1`` and
``threadpoolctl``), so two workers on two cores do not oversubscribe them. Process-pool workers exit
when their parent dies, even by ``kill -9`` (:func:`exit_with_parent`: ``prctl(PR_SET_PDEATHSIG)`` on
Linux, and a watcher thread that checks ``os.getppid()`` everywhere), so no orphan goes on writing
into a run directory that a resumed run is using.

Ray is an optional extra (``pip install 'sdot-nas[ray]'``), imported only when ``kind="ray"``;
``address=None`` starts a local instance with ``workers`` CPUs, ``address="auto"`` (or a
``ray://`` URL) joins an existing cluster. With Ray on several machines, results come back to the
driver; resumable run directories then need a file system that every node sees.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import sys
import time
from typing import Any, Callable, Iterable, Sequence

from sdot.registry import Registry

__all__ = ["EXECUTORS", "SerialExecutor", "RayExecutor", "make_executor", "register_executor", "task_seeds",
           "map_seeded", "limit_threads", "resolve_workers", "exit_with_parent"]

#: name -> factory ``(workers, address=None, runtime_env=None) -> Executor``: what :func:`make_executor` and
#: ``[execution] executor`` in a config accept (filled at the end of this module).
EXECUTORS: Registry = Registry("executor", hint="add one with experiments.executors.register_executor(name, factory)")

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


def limit_threads(n: int = 1) -> None:
    """Make this process compute with ``n`` threads: BLAS/OpenMP pools and torch's intra/inter-op pools.

    Used as the initializer of every worker; also what ``bench_parallel`` calls for its serial baseline.
    """
    for var in _THREAD_ENV:
        os.environ[var] = str(n)
    try:  # BLAS libraries already loaded (numpy is) read the variables only at load time
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass
    torch = sys.modules.get("torch")      # not imported yet: it will read OMP_NUM_THREADS when it is
    if torch is not None:
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # already set, or parallel work already started in this process
            pass


def exit_with_parent(parent_pid: int, poll_s: float = 0.25) -> None:
    """Make this process exit as soon as process ``parent_pid`` (its parent) is gone.

    On Linux the kernel sends SIGKILL to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``
    through ctypes); everywhere, a daemon thread checks every ``poll_s`` seconds that ``os.getppid()``
    is still ``parent_pid`` (a child of a dead parent is re-parented) and calls ``os._exit(1)`` if not.
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)        # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl: the watcher alone
            pass
    if os.getppid() != parent_pid:          # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(n_threads: int, parent_pid: int) -> None:
    """Initializer of process-pool workers: one thread each, and exit when the parent dies."""
    exit_with_parent(parent_pid)
    limit_threads(n_threads)


def resolve_workers(workers: int | None) -> int:
    """``None`` or 0 means one worker per core."""
    if workers is None or workers == 0:
        return max(1, os.cpu_count() or 1)
    if workers < 0:
        raise ValueError(f"workers must be >= 0 (0 = one per core), got {workers}")
    return int(workers)


class SerialExecutor(cf.Executor):
    """Runs each task in the calling thread when it is submitted; the future is already done."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        if self._shutdown:
            raise RuntimeError("cannot submit to an executor that was shut down")
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, like a pool
            if isinstance(exc, KeyboardInterrupt):
                raise
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


class RayExecutor(cf.Executor):
    """``concurrent.futures`` front to Ray tasks (one CPU and one thread per task).

    Parameters
    ----------
    workers : CPUs of the local instance started when ``address`` is None (ignored when joining).
    address : None (start a local instance), ``"auto"`` or ``"ray://host:port"`` (join a cluster).
    runtime_env : passed to ``ray.init``; by default the driver's ``sys.path`` is given to the workers
        as ``PYTHONPATH`` so modules importable here (plugins, a source checkout) are importable there.
    """

    def __init__(self, workers: int | None = None, address: str | None = None,
                 runtime_env: dict | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ImportError("the 'ray' executor needs Ray, an optional extra: pip install 'sdot-nas[ray]' "
                              "(or pip install 'ray>=2.30'); use executor 'process' for one machine") from exc
        self._ray = ray
        self._owns_instance = False
        if not ray.is_initialized():
            env = dict(runtime_env or {})
            env_vars = {v: "1" for v in _THREAD_ENV}
            env_vars["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
            env_vars.update(env.get("env_vars", {}))
            env["env_vars"] = env_vars
            kwargs: dict[str, Any] = dict(runtime_env=env, include_dashboard=False, log_to_driver=True,
                                          logging_level="WARNING", configure_logging=True)
            if address is None:
                kwargs["num_cpus"] = resolve_workers(workers)
            else:
                kwargs["address"] = address
            ray.init(**kwargs)
            self._owns_instance = True
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_ray_call)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        return self._remote.remote(fn, args, kwargs).future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._owns_instance and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns_instance = False


def _ray_call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    limit_threads(1)
    return fn(*args, **kwargs)


def make_executor(kind: str = "serial", workers: int | None = 1, *, address: str | None = None,
                  runtime_env: dict | None = None) -> cf.Executor:
    """An executor by name: ``"serial"``, ``"process"`` (``workers`` spawned processes, one thread each)
    or ``"ray"`` (or any registered one). ``workers=0``/None means one per core. Use it as a context manager."""
    if kind not in EXECUTORS:
        raise ValueError(EXECUTORS.unknown_message(kind))
    return EXECUTORS.load(kind)(workers, address=address, runtime_env=runtime_env)


def register_executor(name: str, factory: Callable[..., cf.Executor]) -> Callable[..., cf.Executor]:
    """Add an executor: ``factory(workers, address=None, runtime_env=None)`` returns a ``concurrent.futures``
    executor (duplicate names refused, like every registry)."""
    return EXECUTORS.register(name, factory)


def _serial(workers: int | None = 1, address: str | None = None, runtime_env: dict | None = None) -> cf.Executor:
    return SerialExecutor()


def _process(workers: int | None = 1, address: str | None = None, runtime_env: dict | None = None) -> cf.Executor:
    # spawn, not fork: forking a process that already runs torch/BLAS thread pools can deadlock
    return cf.ProcessPoolExecutor(max_workers=resolve_workers(workers), mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(1, os.getpid()))


def _ray(workers: int | None = 1, address: str | None = None, runtime_env: dict | None = None) -> cf.Executor:
    return RayExecutor(workers=workers, address=address, runtime_env=runtime_env)


EXECUTORS.register("serial", _serial)
EXECUTORS.register("process", _process)
EXECUTORS.register("ray", _ray)


def task_seeds(seed: int | Sequence[int] | None, n: int) -> list:
    """Independent ``SeedSequence`` streams for ``n`` tasks: task ``i`` always gets the same one."""
    import numpy as np

    return np.random.SeedSequence(seed).spawn(n)


def map_seeded(executor: cf.Executor, fn: Callable[[Any, Any], Any], items: Iterable[Any],
               seed: int | None = 0) -> list[Any]:
    """``[fn(item, stream_i) for i, item]`` on ``executor``, in order; ``stream_i`` is task ``i``'s
    ``SeedSequence`` (build a generator with ``np.random.default_rng(stream_i)``)."""
    items = list(items)
    futures = [executor.submit(fn, item, s) for item, s in zip(items, task_seeds(seed, len(items)))]
    return [f.result() for f in futures]


def _demo_draw(item: Any, stream: Any) -> float:
    """A seeded task for the doctest and the executor tests: a uniform draw from the task's stream."""
    import numpy as np

    return float(np.random.default_rng(stream).random())
