"""Serving a class from one machine: Voila's pool of pre-heated kernels, refilled one kernel at a time.

``voila --preheat_kernel=True --pool_size=N`` runs the dashboard in N kernels before anyone asks, so that a page
only has to be drawn. Each kernel a page takes is replaced ``fill_delay`` seconds later, and Voila starts every
replacement at once: eight learners who open the page together get eight replacements ``fill_delay`` later, each
importing torch and running the notebook while the learners train. On two cores that starved the kernels' message
handling (a Pause took tens of seconds to show).

:class:`PacedKernelManager` starts the pool's kernels one after the other instead: a pool kernel waits until the
one before it has run its notebook (it went busy, then used no CPU for ``quiet_s``), so a refill costs the class at
most one busy process at a time. Kernels started for a page directly (no pool) are never held back. Serve a class
with it::

    voila --preheat_kernel=True --pool_size=10 \\
          --VoilaConfiguration.multi_kernel_manager_class=segtutor.classroom.PacedKernelManager \\
          notebooks/dashboards/training_studio.ipynb
"""

from __future__ import annotations

import asyncio
import time

import psutil
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float


class PacedKernelManager(AsyncMappingKernelManager):
    """Jupyter's kernel manager, starting Voila's pre-heated kernels one at a time (see the module's docs)."""

    quiet_s = Float(1.0, config=True, help="Seconds without CPU use after which a pool kernel has run its notebook")
    settle_timeout_s = Float(120.0, config=True, help="The longest a pool kernel holds up the next one (seconds)")
    poll_s = Float(0.1, config=True, help="How often a settling kernel's state and CPU time are read (seconds)")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._turn: asyncio.Lock | None = None  # made on first use, in the server's event loop

    async def start_kernel(self, **kwargs) -> str:
        """Start a kernel; one of Voila's pool (``VOILA_PREHEAT`` in its environment) waits for the one before."""
        if kwargs.get("env", {}).get("VOILA_PREHEAT") != "True":
            return await super().start_kernel(**kwargs)
        self._turn = self._turn or asyncio.Lock()
        await self._turn.acquire()
        try:
            kernel_id = await super().start_kernel(**kwargs)
        except BaseException:
            self._turn.release()
            raise
        started = time.monotonic()

        def next_turn(_) -> None:
            self.log.info("Pre-heated kernel %s settled after %.1f s; the next may start", kernel_id,
                          time.monotonic() - started)  # fmt: skip
            self._turn.release()

        # Voila runs the notebook once this returns; the next pool kernel starts when it is done
        asyncio.create_task(self._release_when_settled(kernel_id)).add_done_callback(next_turn)
        return kernel_id

    async def _release_when_settled(self, kernel_id: str) -> None:
        """Return once the kernel has run its notebook (busy, then quiet for ``quiet_s``), died or timed out."""
        deadline = time.monotonic() + self.settle_timeout_s
        began, quiet_since, used = False, None, self._cpu_seconds(kernel_id)
        while used is not None and time.monotonic() < deadline:
            await asyncio.sleep(self.poll_s)
            now, last = time.monotonic(), used
            used = self._cpu_seconds(kernel_id)
            if used is None:  # the kernel is gone
                return
            began = began or self._execution_state(kernel_id) == "busy"
            busy = used - last > 0.1 * self.poll_s  # more than a tenth of a core
            quiet_since = None if busy else quiet_since or now
            if began and quiet_since is not None and now - quiet_since >= self.quiet_s:
                return

    def _execution_state(self, kernel_id: str) -> str | None:
        """What the server last heard from the kernel: starting, idle or busy (None once it is gone)."""
        kernel = self._kernels.get(kernel_id)
        return getattr(kernel, "execution_state", None)

    def _cpu_seconds(self, kernel_id: str) -> float | None:
        """CPU seconds the kernel's process (and its children) used so far; None once it is gone."""
        kernel = self._kernels.get(kernel_id)
        pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
        if pid is None:
            return None
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system + times.children_user + times.children_system
