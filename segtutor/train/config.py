"""Every knob of a training run, in one dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, fields

from segtutor.data import IGNORE_INDEX
from segtutor.device import default_device
from segtutor.models import training_defaults
from segtutor.train.losses import LOSSES

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """How to train: optimizer, loss, budget, schedule and hardware.

    Give at least one budget (``max_iters``, ``num_epochs`` or ``max_seconds``); training ends at whichever
    runs out first. Settings left at None (``lr``, ``batch_size``, ``channels_last``) are the model's own
    recommendation (``model.training_defaults``, measured per architecture): :meth:`resolve` fills them in, and
    every training run does so first. A ``loss`` left at None is chosen from the training data's class balance
    when the run starts (:func:`~segtutor.train.losses.choose_loss`: cross-entropy, plus a Dice term and class
    weights where a class is rare).

    Example:
        >>> config = TrainConfig(max_seconds=20)  # the model's recommended lr and batch size
        >>> config.resolve(create_model("unet")).lr
        0.003
        >>> TrainConfig(lr=1e-3, batch_size=8, max_seconds=20)  # or your own
    """

    lr: float | None = None  # peak learning rate; None: the model's recommendation (Adam's usual 1e-3 if none)
    optimizer: str = "adam"  # "adam", or "sgd" (with momentum)
    momentum: float = 0.9  # SGD's momentum; Adam ignores it
    weight_decay: float = 0.0  # L2 penalty on the weights; 0 keeps the loss exactly the one plotted
    batch_size: int | None = None  # images per step (an epoch's last incomplete batch is dropped); None: the model's
    max_iters: int | None = None  # budget in optimizer steps
    num_epochs: int | None = None  # budget in passes over the training data
    max_seconds: float | None = None  # budget in seconds of training (evaluation and pauses not counted)
    loss: str | None = None  # "cross_entropy", "dice", "focal", or a sum: "cross_entropy+dice", "focal+dice"; None: from
    # the training data (cross-entropy + Dice, weights 1 / sqrt(share), where a class has under half of a fair share)
    class_weights: list[float] | None = None  # cross-entropy weight per class, e.g. [1.0, 3.0] for rare tumor; None:
    # none, or those a loss left at None chose
    ignore_index: int = IGNORE_INDEX  # mask value for unlabelled pixels: no loss, no score
    schedule: str = "cosine"  # "cosine": lr falls from lr to 0 over the budget; "constant": lr throughout
    eval_every: int | None = None  # evaluate every this many steps; None: once per epoch (and always at the end)
    seed: int = 0  # seeds the data order and torch's generator (dropout): same seed, same run on the CPU
    device: str | None = None  # "cpu", "cuda", "mps"; None: segtutor.default_device()
    num_threads: int | None = None  # torch CPU threads in the training thread; None: torch's choice (1 per core)
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on other devices)
    channels_last: bool | None = None  # NHWC memory layout; None: on CUDA always, on a CPU where the model gains
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
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}; typical values are 1e-4 to 1e-2")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.device is not None:
            self.device = str(self.device)  # torch.device("cuda") -> "cuda", so the config stays JSON-ready
        # 2) names from a short list
        for name, allowed in (("optimizer", OPTIMIZERS), ("loss", LOSSES), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed and not (name == "loss" and self.loss is None):
                raise ValueError(f"{name}={getattr(self, name)!r} is unknown; choose one of {', '.join(allowed)}")
        if self.class_weights is not None:
            self.class_weights = [float(weight) for weight in self.class_weights]
            if any(not weight >= 0 for weight in self.class_weights):
                raise ValueError(f"class_weights must be >= 0, got {self.class_weights}")

    def resolve(self, model: object) -> TrainConfig:
        """This config with every setting left at None that a model recommends filled in from ``model``.

        ``lr`` (for the chosen optimizer) and ``batch_size`` come from ``model.training_defaults``
        (:func:`segtutor.models.training_defaults`; Adam's usual 1e-3, SGD's 1e-2 and batch 8 for a model that
        recommends nothing); ``channels_last`` is on for CUDA and on a CPU where the model trains faster with it.
        Settings given explicitly are kept; so is a ``loss`` of None, which the run chooses from its data.

        Example:
            >>> TrainConfig(max_iters=100, lr=1e-2).resolve(create_model("unet")).lr  # given: kept
            0.01
        """
        defaults = training_defaults(model)
        device = self.device if self.device is not None else str(default_device())
        channels_last = self.channels_last
        if channels_last is None:
            channels_last = device.startswith("cuda") or (device == "cpu" and defaults.channels_last_on_cpu)
        return dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else defaults.lr if self.optimizer == "adam" else defaults.sgd_lr,
            batch_size=self.batch_size if self.batch_size is not None else defaults.batch_size,
            channels_last=channels_last,
        )

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
