"""Every knob of a training run, in one dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from segtutor.data import IGNORE_INDEX

OPTIMIZERS = ("adam", "sgd")
LOSSES = ("cross_entropy", "dice", "cross_entropy+dice", "focal", "focal+dice")
SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """How to train: optimizer, loss, budget, schedule and hardware.

    Give at least one budget (``max_iters``, ``num_epochs`` or ``max_seconds``); training ends at whichever
    runs out first.

    Example:
        >>> config = TrainConfig(lr=1e-3, batch_size=8, max_seconds=20)
    """

    lr: float = 1e-3  # peak learning rate; Adam's usual starting point
    optimizer: str = "adam"  # "adam", or "sgd" (with momentum)
    momentum: float = 0.9  # SGD's momentum; Adam ignores it
    weight_decay: float = 0.0  # L2 penalty on the weights; 0 keeps the loss exactly the one plotted
    batch_size: int = 8  # images per step; the last incomplete batch of an epoch is dropped
    max_iters: int | None = None  # budget in optimizer steps
    num_epochs: int | None = None  # budget in passes over the training data
    max_seconds: float | None = None  # budget in seconds of training (evaluation and pauses not counted)
    loss: str = "cross_entropy"  # "cross_entropy", "dice", "focal", or a sum: "cross_entropy+dice", "focal+dice"
    class_weights: list[float] | None = None  # cross-entropy weight per class, e.g. [1.0, 3.0] for rare tumor
    ignore_index: int = IGNORE_INDEX  # mask value for unlabelled pixels: no loss, no score
    schedule: str = "cosine"  # "cosine": lr falls from lr to 0 over the budget; "constant": lr throughout
    eval_every: int | None = None  # evaluate every this many steps; None: once per epoch (and always at the end)
    seed: int = 0  # seeds the data order and torch's generator (dropout): same seed, same run on the CPU
    device: str | None = None  # "cpu", "cuda", "mps"; None: segtutor.default_device()
    num_threads: int | None = None  # torch CPU threads in the training thread; None: torch's choice (1 per core)
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on other devices)
    channels_last: bool | None = None  # NHWC memory layout; None: on CUDA only (on CPU it depends on the model)
    num_workers: int = 0  # DataLoader worker processes; 0 loads in the training thread (best for small data)

    def __post_init__(self):
        # 1) a budget, and only sensible numbers
        if self.max_iters is None and self.num_epochs is None and self.max_seconds is None:
            raise ValueError(
                "TrainConfig needs a budget: give max_iters (steps), num_epochs (passes over the data) "
                "or max_seconds (training time), e.g. TrainConfig(max_seconds=20)"
            )
        for name in ("max_iters", "num_epochs", "max_seconds", "eval_every", "num_threads"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 (or None), got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}; typical values are 1e-4 to 1e-2")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.device is not None:
            self.device = str(self.device)  # torch.device("cuda") -> "cuda", so the config stays JSON-ready
        # 2) names from a short list
        for name, allowed in (("optimizer", OPTIMIZERS), ("loss", LOSSES), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is unknown; choose one of {', '.join(allowed)}")
        if self.class_weights is not None:
            self.class_weights = [float(weight) for weight in self.class_weights]
            if any(not weight >= 0 for weight in self.class_weights):
                raise ValueError(f"class_weights must be >= 0, got {self.class_weights}")

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready), e.g. to store in a checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**values)
