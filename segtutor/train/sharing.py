"""Sharing a machine's cores between the training runs of all its processes: a class of learners on one server.

Each learner's dashboard is a kernel of its own, and each kernel trains in its own process. Left alone, eight
kernels training with two torch threads each put sixteen busy threads on two cores: every step slows down, and so
does everything else (the kernels' message handling, the server, the pages), so a Pause click takes many seconds to
show. A :class:`CpuShare` makes the runs of one machine take turns instead, with nothing but files and locks in a
shared folder:

1. **Cores as slots.** The folder holds one lock file per core (``slot-0.lock`` …). A run trains only while it holds
   one (an exclusive ``flock``), so at most ``slots`` runs step at once, machine-wide.
2. **Threads from the number of runs.** Each run that trains holds a lock on a file of its own (``run-….lock``);
   counting the locked ones gives the runs active now, and a run uses ``slots // runs`` torch threads (at least 1,
   at most what it asked for). One run alone keeps all its threads: for a single learner nothing changes.
3. **Turns in order.** A run that finds every core busy waits in line: a locked ``wait-<ticket>-….lock`` file holds
   its place (the ticket is the time it came). While it is actually waiting (inside :meth:`CpuTurn.acquire`) it also
   holds ``ready-<ticket>-….lock``, and a core that comes free goes to the first *ready* run in line. A run that
   keeps its place but is busy elsewhere (evaluating after a Stop, telling its views) holds up nobody, and gets the
   next core when it asks again. A run that has held its core for ``quantum_s`` seconds hands it over if anyone is
   ready for it, and joins the end of the line: eight runs on two cores each train a second in four.
4. **Nothing stays stuck.** The operating system drops a process's locks when it ends (even when it is killed), so
   a file nobody holds is a leftover that the next look removes. A paused run leaves the count and the line: a
   paused or idle learner costs nothing.

Waiting happens between two steps and is bounded by a timeout, so the training loop keeps telling its callbacks
(``on_wait``) and keeps honouring Pause and Stop while it waits (see :meth:`~segtutor.train.Trainer.run`). The
training thread also lowers its own scheduling priority (``nice``): the kernel's message handling, the server and
the browser come first, training takes the cores left over. Locks are POSIX ``flock``: on Windows a share does
nothing.

Example:
    >>> share = CpuShare()  # one slot per core, the folder under the system's temporary directory
    >>> turn = share.join(threads=2)
    >>> while training:
    ...     if turn.acquire(timeout=0.2):   # False: every core is busy, still waiting (tell the views)
    ...         step(num_threads=turn.threads)
    ...         turn.after_step()           # after quantum_s, let the next in line have the core
    >>> turn.leave()
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import tempfile
import threading
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; every share is then a no-op
    fcntl = None

SLOTS_VARIABLE = "SEGTUTOR_CPU_SLOTS"  # cores the runs of this machine share; 0 turns sharing off
FOLDER_VARIABLE = "SEGTUTOR_CPU_SHARE_DIR"  # the folder every process of the machine agrees on
_names = itertools.count()  # unique file names within this process


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, else ``os.cpu_count()``)."""
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_folder() -> Path:
    """``$SEGTUTOR_CPU_SHARE_DIR``, or ``segtutor-cpu-share-<user id>`` in the system's temporary folder."""
    if os.environ.get(FOLDER_VARIABLE):
        return Path(os.environ[FOLDER_VARIABLE])
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"segtutor-cpu-share-{user}"


class CpuShare:
    """The cores of one machine, shared in turns by every training run that uses the same folder.

    Args:
        slots: how many runs may step at once; default ``$SEGTUTOR_CPU_SLOTS`` or the number of cores. 0 turns
            sharing off (:attr:`enabled` is False and every turn is granted at once).
        folder: where the lock files live; every process of the machine must use the same one (default
            :func:`default_folder`).
        quantum_s: seconds a run keeps its core while others wait, before it hands it over.
        poll_s: how often a waiting run looks for a free core.
        nice: how much a run lowers its training thread's priority (0: not at all), so that message handling,
            the server and the browser go first.
    """

    def __init__(self, slots: int | None = None, folder: str | Path | None = None, *, quantum_s: float = 1.0,
                 poll_s: float = 0.05, nice: int = 5) -> None:  # fmt: skip
        if slots is None:
            text = os.environ.get(SLOTS_VARIABLE, "")
            if text and not text.isdigit():
                raise ValueError(f"{SLOTS_VARIABLE} must be a whole number of cores (0: no sharing), got {text!r}")
            slots = int(text) if text else available_cores()
        if slots < 0:
            raise ValueError(f"slots must be >= 0 (0: no sharing), got {slots}")
        if not quantum_s > 0 or not poll_s > 0:
            raise ValueError(f"quantum_s and poll_s must be > 0, got {quantum_s} and {poll_s}")
        if nice < 0:
            raise ValueError(f"nice must be >= 0 (a run can only lower its own priority), got {nice}")
        self.slots = slots
        self.folder = Path(folder) if folder is not None else default_folder()
        self.quantum_s, self.poll_s, self.nice = quantum_s, poll_s, nice

    @property
    def enabled(self) -> bool:
        """False when there is nothing to share with (``slots == 0``, or no ``flock`` on this system)."""
        return self.slots > 0 and fcntl is not None

    def join(self, threads: int) -> CpuTurn:
        """Count one more run on this machine; ``threads`` is the most torch threads it wants. See :class:`CpuTurn`."""
        return CpuTurn(self, threads)

    def active_runs(self) -> int:
        """Runs of this machine training now (not paused), this process's included."""
        return len(self._alive("run-*.lock")) if self.enabled else 0

    def line(self) -> list[Path]:
        """The runs waiting for a core, oldest first (their lock files): each run's place in line."""
        return sorted(self._alive("wait-*.lock")) if self.enabled else []

    def ready(self) -> list[str]:
        """The places (``<ticket>-…``, oldest first) of the runs in line that are waiting for a core right now."""
        return sorted(path.name.removeprefix("ready-") for path in self._alive("ready-*.lock")) if self.enabled else []

    def _alive(self, pattern: str) -> list[Path]:
        """The files matching ``pattern`` that some process holds locked; leftovers of ended processes are removed."""
        alive = []
        for path in self.folder.glob(pattern):
            try:
                descriptor = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # removed meanwhile
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: its run is alive
                alive.append(path)
            else:  # nobody holds it: its process has ended
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            finally:
                os.close(descriptor)
        return alive

    def _hold(self, prefix: str, place: str | None = None) -> tuple[Path, int]:
        """A new file ``<prefix>-<place>`` in the folder, locked by this process until :func:`os.close`.

        ``place`` defaults to a name of its own (``<pid>-<thread>-<n>.lock``). The file is locked under a hidden
        name first, then renamed: nobody ever sees it unlocked (and removes it).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        place = place or f"{os.getpid()}-{threading.get_native_id()}-{next(_names)}.lock"
        name = f"{prefix}-{place}"
        hidden = self.folder / f".{name}"
        descriptor = os.open(hidden, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.rename(hidden, self.folder / name)
        return self.folder / name, descriptor

    def _take_slot(self) -> int | None:
        """Lock a free slot file (tried in random order); its descriptor, or None if every slot is taken."""
        self.folder.mkdir(parents=True, exist_ok=True)
        order = list(range(self.slots))
        random.shuffle(order)  # noqa: S311 (spreads the runs over the slots; no secret)
        for index in order:
            descriptor = os.open(self.folder / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return descriptor
        return None

    def __repr__(self) -> str:
        if not self.enabled:
            return "CpuShare(off)"
        return f"CpuShare({self.slots} slots in {self.folder}, {self.active_runs()} runs active)"


class CpuTurn:
    """One run's place in a :class:`CpuShare`: counted while it trains, holding a core while it steps.

    Use it from the thread that trains. :meth:`acquire` before a step, :meth:`after_step` after it, :meth:`pause`
    while the run is paused, :meth:`leave` at the end (also a context manager). :attr:`threads` is how many torch
    threads the next step should use; :attr:`ahead` how many runs wait before this one (None: not waiting).
    """

    def __init__(self, share: CpuShare, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.share, self.wanted_threads, self.threads = share, threads, threads
        self.ahead: int | None = None  # runs waiting before this one, while it waits
        self.runs = 1  # runs active on the machine at the last count
        self.waited_s = 0.0  # seconds spent waiting for a core
        self._run: tuple[Path, int] | None = None  # this run's file in the count
        self._wait: tuple[Path, int] | None = None  # its place in the line, while it waits
        self._ready: tuple[Path, int] | None = None  # held while it waits inside acquire: it takes a core at once
        self._slot: int | None = None  # the slot it holds, while it holds one
        self._place = ""  # its place in line: ``<ticket>-<pid>-<thread>-<n>.lock``, the ticket the time it came
        self._held_since = 0.0
        self._niced = False

    @property
    def holding(self) -> bool:
        """True while this run holds a core (or sharing is off)."""
        return self._slot is not None or not self.share.enabled

    def acquire(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for a core; True once this run holds one (at once if it does already).

        False means every core is still busy: the caller tells its views (:attr:`ahead`), checks pause and stop,
        and calls again. On success :attr:`threads` is set from the runs active now.
        """
        if not self.share.enabled:
            return True
        self._lower_priority()
        if self._run is None:
            self._run = self.share._hold("run")
        if self._slot is not None:
            return True
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        try:
            while True:
                # 1) this run's place, for the views; and whether a run ready for a core comes before it
                line = self.share.line()
                mine = self._wait[0] if self._wait is not None else None
                self.ahead = line.index(mine) if mine in line else len(line)
                if self._ready is None and self._wait is not None:
                    self._ready = self.share._hold("ready", self._place)  # waiting now: a free core is for it
                if not self._ready_before():  # 2) nobody ready before this run: try for a core
                    self._slot = self.share._take_slot()
                    if self._slot is not None:
                        self._leave_line()
                        self._held_since = time.monotonic()
                        self.ahead = None
                        self._count()
                        return True
                if self._wait is None:  # 3) every core busy, or others wait first: the end of the line
                    self._join_line()
                    continue
                if time.monotonic() >= deadline:
                    self.runs = max(self.share.active_runs(), 1)
                    return False
                time.sleep(min(self.share.poll_s, max(deadline - time.monotonic(), 0)))
        finally:
            self._not_ready()  # keeps its place, but between two calls it holds up nobody
            self.waited_s += time.monotonic() - started

    def _ready_before(self) -> bool:
        """True if a run waiting for a core right now came before this one (any, if this one is not in line)."""
        ready = self.share.ready()
        if self._wait is None:
            return bool(ready)
        return any(place < self._place for place in ready)

    def after_step(self) -> None:
        """Every ``quantum_s`` seconds a run holds its core: hand it over if another run waits for one.

        The run then joins the end of the line (the next :meth:`acquire` waits for its turn); if nobody waits, it
        keeps the core and counts the runs again (:attr:`threads` falls when others have started meanwhile).
        """
        if self._slot is None or time.monotonic() - self._held_since < self.share.quantum_s:
            return
        if self.share.ready():  # a run is waiting for a core right now
            self._release_slot()
            self._join_line()
        else:
            self._held_since = time.monotonic()
            self._count()

    def _count(self) -> None:
        """The runs active now, and this run's torch threads from them: ``slots // runs``, 1 to the threads asked."""
        self.runs = max(self.share.active_runs(), 1)
        self.threads = max(1, min(self.wanted_threads, self.share.slots // self.runs))

    def pause(self) -> None:
        """Give the core back and leave the count and the line (a paused run costs nothing); acquire to go on."""
        self._release_slot()
        self._leave_line()
        if self._run is not None:
            os.close(self._run[1])
            with contextlib.suppress(FileNotFoundError):
                self._run[0].unlink()
            self._run = None
        self.ahead = None

    leave = pause  # the end of the run: the same as a pause that lasts

    def __enter__(self) -> CpuTurn:
        return self

    def __exit__(self, *exc) -> None:
        self.leave()

    def _release_slot(self) -> None:
        if self._slot is not None:
            os.close(self._slot)  # closing the descriptor drops its lock
            self._slot = None

    def _join_line(self) -> None:
        self._place = f"{time.time_ns():020d}-{os.getpid()}-{threading.get_native_id()}-{next(_names)}.lock"
        self._wait = self.share._hold("wait", self._place)  # the ticket first: files sort in the order runs came

    def _not_ready(self) -> None:
        _let_go(self._ready)
        self._ready = None

    def _leave_line(self) -> None:
        self._not_ready()
        _let_go(self._wait)
        self._wait = None

    def _lower_priority(self) -> None:
        """Lower the calling thread's priority by ``share.nice`` once (Linux: niceness belongs to each thread)."""
        if self._niced or not self.share.nice:
            return
        self._niced = True
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                           os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + self.share.nice)  # fmt: skip

    def __repr__(self) -> str:
        if not self.share.enabled:
            return "CpuTurn(sharing off)"
        where = "holding a core" if self._slot is not None else f"waiting, {self.ahead} ahead" if self._wait else "idle"
        return f"CpuTurn({where}, {self.threads} threads, {self.runs} runs on {self.share.slots} cores)"


def _let_go(held: tuple[Path, int] | None) -> None:
    """Remove a file this run holds locked (if any) and close its descriptor, which drops the lock."""
    if held is not None:
        path, descriptor = held
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(descriptor)
