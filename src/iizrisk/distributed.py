"""Scale-out on Dask: the per-person stages run as tasks, one person bucket per task.

Every stage up to model fitting is per person, so it can be split by a fixed
hash of the pseudonym (:func:`iizrisk.snapshots.person_bucket`) and each
bucket built on its own. This module gives the stages a Dask client and a
way to run their buckets on it; the stages themselves decide what a task
does:

* :func:`iizrisk.snapshots.build_snapshots` ``(..., client=client)``: each task
  builds one bucket's snapshots at every as-of date and writes its partitions
  to the dataset folder (which every worker must see: shared storage).
* :func:`iizrisk.evaluation.risk_set_table` ``(..., client=client)`` and
  :meth:`iizrisk.evaluation.AssessmentStudy.fit` ``(..., client=client)``: the
  risk sets and the control sampling are decided once on the client; each
  task computes the covariates and outcomes of one bucket's sampled rows.

Results are identical to the single-process path (the same partition bytes,
the same table): a person's rows depend on that person's spells only.

Dask is an optional dependency (``pip install 'iizrisk[dask]'``), imported
only inside these functions: ``import iizrisk`` never needs it.

Examples
--------
>>> from iizrisk.distributed import dask_client        # doctest: +SKIP
>>> with dask_client(workers=2) as client:              # doctest: +SKIP
...     build_snapshots(spells, "snaps", as_of=dates, client=client)
>>> with dask_client("tcp://scheduler:8786") as client:  # doctest: +SKIP
...     table = risk_set_table(spells, interventions, client=client)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConfigError, OperatingSystemError

__all__ = ["DEFAULT_WORKERS", "INSTALL_HINT", "check_workers", "dask_client", "require_dask", "run_tasks",
           "start_client"]

logger = logging.getLogger("iizrisk")

#: Workers of the LocalCluster started when no scheduler address is given.
DEFAULT_WORKERS = 2
#: What to install for the Dask path.
INSTALL_HINT = "pip install 'iizrisk[dask]'"
#: Packages whose versions must be the same on the client and every worker (byte-identical output).
SAME_VERSIONS = ("iizrisk", "numpy", "pandas", "pyarrow")


def require_dask() -> Any:
    """The :mod:`distributed` module, or a :class:`~iizrisk.errors.ConfigError` naming the extra to install.

    Returns
    -------
    module
        ``distributed`` (Dask's scheduler client).

    Raises
    ------
    ConfigError
        Dask or distributed is not installed.
    """
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError as exc:
        raise ConfigError(f"the Dask path needs dask and distributed, which are not installed ({exc.name or 'dask'} "
                          f"is missing); install them with {INSTALL_HINT}") from None
    return distributed


def start_client(address: str | None = None, *, workers: int = DEFAULT_WORKERS, threads_per_worker: int = 1,
                 memory_limit: str | int | None = "auto", processes: bool = True, timeout: float = 30.0) -> Any:
    """A Dask client: connected to ``address``, or to a new ``LocalCluster`` it owns.

    Close it with ``client.close()`` (or use :func:`dask_client`): a
    LocalCluster started here is shut down with its client; a remote cluster
    is left running.

    Parameters
    ----------
    address : str, optional
        The scheduler, e.g. ``"tcp://10.0.0.5:8786"``. None: a LocalCluster on this machine.
    workers : int, default 2
        Worker processes of the LocalCluster (ignored with ``address``).
    threads_per_worker : int, default 1
        Threads per local worker. The stages are numpy and pandas code that
        holds the GIL much of the time: one thread per worker process.
    memory_limit : str or int or None, default "auto"
        Memory per local worker (``"4GiB"``, bytes, ``"auto"``: the machine's
        memory shared among the workers; None: no limit).
    processes : bool, default True
        Workers as processes (True) or as threads of this process.
    timeout : float, default 30
        Seconds to wait for the scheduler at ``address``.

    Returns
    -------
    distributed.Client

    Raises
    ------
    ConfigError
        Dask is not installed, the arguments are wrong, or the scheduler
        cannot be reached.
    """
    distributed = require_dask()
    if address is not None:
        if not isinstance(address, str) or not address.strip():
            raise ConfigError(f"Dask scheduler address must be text such as 'tcp://host:8786', got {address!r}")
        try:
            return distributed.Client(address.strip(), timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address.strip()} within {timeout:g} s "
                              f"({type(exc).__name__}); check the address and that `dask scheduler` runs "
                              "there") from None
    for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    import dask

    # Dask starts its worker processes with MALLOC_TRIM_THRESHOLD_=65536 (freed memory goes back to the
    # system at once): in the snapshot build that cost 20 % more CPU time (system time, 30 times the page
    # faults) for no gain in peak memory. The nannies read it when they are created, here.
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        # the scheduler's HTTP server starts in any case: on a free port, never on another cluster's 8787
        return distributed.Client(n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
                                  memory_limit=memory_limit, dashboard_address=":0",
                                  silence_logs=logging.WARNING)


@contextmanager
def dask_client(address: str | None = None, **kwargs) -> Iterator[Any]:
    """``with dask_client(...) as client:`` a client from :func:`start_client`, closed on leaving.

    A LocalCluster started for it is shut down too; a remote scheduler and
    its workers keep running.

    Parameters
    ----------
    address : str, optional
        The scheduler address; None starts a LocalCluster.
    **kwargs
        Passed to :func:`start_client` (``workers``, ``memory_limit``, ...).
    """
    client = start_client(address, **kwargs)
    try:
        yield client
    finally:
        client.close()


def _versions() -> dict[str, str]:
    """The versions of :data:`SAME_VERSIONS` in this process (run on every worker)."""
    import importlib.metadata as md

    out = {}
    for name in SAME_VERSIONS:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_workers(client: Any) -> int:
    """Check that every worker runs the client's versions of iizrisk, numpy, pandas and pyarrow.

    The output is byte-identical to the single-process path only then (a
    Parquet file records its writer's version, and a feature may change
    between iizrisk versions).

    Returns
    -------
    int
        The number of workers now connected (0 is allowed: tasks wait for workers).

    Raises
    ------
    ConfigError
        A worker runs other versions (each one named, with the fix).
    """
    mine = _versions()
    theirs = client.run(_versions)
    bad = sorted({f"{name} {v.get(name)} on {worker} (client: {mine[name]})"
                  for worker, v in theirs.items() for name in SAME_VERSIONS if v.get(name) != mine[name]})
    if bad:
        raise ConfigError("Dask workers run other package versions than the client: " + "; ".join(bad)
                          + "; install the same versions everywhere (results would not be identical)")
    return len(theirs)


def run_tasks(client: Any, fn: Callable[..., Any], arguments: Iterable[tuple], *, window: int | None = None,
              on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """Run ``fn(*args)`` on the cluster for each ``args`` of ``arguments``; the results in that order.

    At most ``window`` tasks are submitted at a time, so the client holds
    (and has sent) the inputs of a few tasks only: ``arguments`` is read
    lazily, and a DataFrame argument is scattered to the cluster just before
    its task is submitted and released when the task is done.

    When a task fails, no further task is submitted; the tasks already running
    are waited for (so that their files are complete, not half-written), and
    the first error is raised (a worker killed for lack of memory as
    :class:`~iizrisk.errors.OperatingSystemError`, exit code 6).

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        A module-level function (workers import it by name).
    arguments : iterable of tuple
        The positional arguments of each task.
    window : int, optional
        Tasks in flight (default twice the cluster's threads, at least 2).
    on_done : callable, optional
        ``on_done(i, result)`` on the client as task ``i`` finishes (e.g. a progress bar).

    Returns
    -------
    list
        ``fn``'s results, in the order of ``arguments``.
    """
    import pandas as pd

    distributed = require_dask()
    if window is None:
        window = max(2, 2 * sum(client.nthreads().values()))
    pending = iter(enumerate(arguments))
    results: dict[int, Any] = {}
    index: dict[Any, int] = {}
    scattered: dict[Any, list] = {}
    queue = distributed.as_completed()
    error: BaseException | None = None

    def submit_next() -> bool:
        item = next(pending, None)
        if item is None:
            return False
        i, args = item
        data = [client.scatter(a, hash=False) if isinstance(a, pd.DataFrame) else a for a in args]
        fut = client.submit(fn, *data, pure=False)
        index[fut] = i
        scattered[fut] = [a for a in data if isinstance(a, distributed.Future)]
        queue.add(fut)
        return True

    try:
        for _ in range(window):
            if not submit_next():
                break
        for fut in queue:
            i = index.pop(fut)
            for f in scattered.pop(fut):
                f.release()
            if fut.status == "error":
                error = error or fut.exception()
            else:
                results[i] = fut.result()
                if on_done is not None:
                    on_done(i, results[i])
            fut.release()
            if error is None:
                submit_next()
    except BaseException:  # interrupted on the client: cancel what has not started
        client.cancel(list(index))
        raise
    if isinstance(error, distributed.KilledWorker):
        raise OperatingSystemError(f"a Dask worker died while running a task ({error}); workers are killed "
                                   "when they run out of memory: give each worker more memory, or use more "
                                   "person buckets so that each task is smaller") from error
    if error is not None:
        raise error
    return [results[i] for i in sorted(results)]
