"""What every step-by-step explorer state shares: named settings, a list of steps and a current one."""

from __future__ import annotations

from typing import Any, ClassVar


class SteppedState:
    """Base for explorer states (no widgets): ``SETTINGS`` name the arguments of ``_apply``, which must set an
    attribute per setting, ``self.steps`` and ``self.index = 0``.
    """

    SETTINGS: ClassVar[tuple[str, ...]] = ()
    steps: list
    index: int

    def configure(self, **settings: Any) -> None:
        """Change any of the ``SETTINGS``; start again at step 0.

        Raises:
            TypeError: on a setting name this state does not have.
            ValueError: on bad settings; the previous settings are kept.
        """
        current = {name: getattr(self, name) for name in self.SETTINGS}
        unknown = set(settings) - set(current)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; choose from {sorted(current)}")
        self._apply(**{**current, **settings})

    def _apply(self, **settings: Any) -> None:
        raise NotImplementedError

    @property
    def step(self):
        """The current step."""
        return self.steps[self.index]

    def go_to(self, index: int):
        """Make step ``index`` the current one (0 … ``len(steps) − 1``) and return it."""
        if not 0 <= index < len(self.steps):
            raise ValueError(f"step must be in 0 … {len(self.steps) - 1}, got {index}")
        self.index = index
        return self.step
