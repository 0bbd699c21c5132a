"""Uncertainty-guided annotation (active learning): ask for labels where the model is unsure, train on, repeat.

ilastik shows where its random forest is unsure and asks for labels there. The same loop with a deep model:

1. **Uncertainty maps** from the softmax: the entropy ``-Σ p log p`` (divided by ``log K``, so 0 is certain and 1 a
   blind guess) or the margin ``1 - (p_top1 - p_top2)``. They are *not* calibrated probabilities of an error: a model
   can be confidently wrong (tissue unlike its training tiles, a systematic mistake) and unsure where the truth itself
   is ambiguous (a blurred border); they are a ranking of where to look, nothing more.
2. **Region proposals**: each tile is cut into a grid of square patches; a patch scores the mean uncertainty of its
   pixels, and the highest-scoring patches not yet labelled are proposed (or random ones, the baseline).
3. **The annotator** reveals the true mask in the chosen patches (:class:`AnnotationPool`: segtutor's generated
   tissue knows its truth, a learner can also paint); every other pixel stays ``IGNORE_INDEX``, which the losses
   and the scores skip.
4. **The rounds**: an :class:`ActiveLearner` trains with :func:`~segtutor.train.fit` on the labelled pixels, scores
   the model on validation tiles, proposes, reveals, trains on from the same weights, and so on; each round is an
   :class:`ActiveRound` (labelled pixels, IoU per class), and :func:`active_learning` runs the rounds in one call.
   :func:`compare_strategies` runs uncertainty-chosen and randomly chosen patches over a few seeds: IoU against
   labelled pixels, the curve that says whether asking the model paid off on this data.

Example:
    >>> pool = AnnotationPool(TissueDataset(16, 64, seed=0), patch_size=16)
    >>> rounds = active_learning(create_model("unet", size="tiny"), pool, TissueDataset(8, 64, seed=1),
    ...                          TrainConfig(max_iters=30, lr=3e-3), rounds=3, patches_per_round=8)
    >>> [(r.labelled_pixels, round(r.iou[1], 3)) for r in rounds]
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from segtutor.data import IGNORE_INDEX, class_balance, class_names_of
from segtutor.predict import predict_proba
from segtutor.train.callbacks import Callback
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.losses import choose_loss
from segtutor.train.sharing import CpuShare
from segtutor.train.trainer import fit

STRATEGIES = ("uncertainty", "random")


# ---- 1. uncertainty maps ---------------------------------------------------------------------------------------
def entropy_map(probs: torch.Tensor) -> torch.Tensor:
    """Normalised entropy of each pixel's class probabilities: ``-Σ p log p / log K``, 0 (certain) to 1 (uniform).

    Args:
        probs: ``(K, H, W)`` probabilities summing to 1 over the classes.

    Returns:
        ``(H, W)`` float32.
    """
    _check_probs(probs)
    probs = probs.float()
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum(0)  # (H, W); 0 · log 0 counts as 0
    return (entropy / math.log(probs.shape[0])).clamp(0, 1)


def margin_map(probs: torch.Tensor) -> torch.Tensor:
    """``1 - (p_top1 - p_top2)`` per pixel: 0 when one class has all the probability, 1 when the top two tie.

    Args:
        probs: ``(K, H, W)`` probabilities summing to 1 over the classes.

    Returns:
        ``(H, W)`` float32.
    """
    _check_probs(probs)
    top = probs.float().topk(2, dim=0).values  # (2, H, W)
    return 1 - (top[0] - top[1])


UNCERTAINTY_MEASURES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"entropy": entropy_map, "margin": margin_map}


def _check_probs(probs: torch.Tensor) -> None:
    if probs.ndim != 3 or probs.shape[0] < 2:
        raise ValueError(f"probs must be (K, H, W) with K >= 2 classes, got shape {tuple(probs.shape)}")


# ---- 2. and 3. patches, proposals and the annotator --------------------------------------------------------------
@dataclass(frozen=True)
class Patch:
    """One square patch of one tile: ``rows row … row + size``, ``cols col … col + size`` (equal patches: the same
    place, whatever their scores)."""

    tile: int  # index of the tile in the pool
    row: int  # top row, a multiple of size
    col: int  # left column, a multiple of size
    size: int  # side in pixels
    score: float = field(default=math.nan, compare=False)  # mean uncertainty when proposed (NaN: chosen at random)


class AnnotationPool:
    """Tiles to annotate patch by patch, their true masks (the simulated annotator's knowledge), and what is labelled.

    Args:
        dataset: ``(image (C, H, W), mask (H, W))`` pairs, all of one size, a multiple of ``patch_size``.
        patch_size: side of the square patches the annotator labels at a time.
        class_names: one per class; default ``dataset.class_names``.

    Attributes:
        images: ``(N, C, H, W)``; masks: ``(N, H, W)`` the true classes; labelled: ``(N, H / p, W / p)`` bool, the
        patches revealed so far.
    """

    def __init__(self, dataset: Dataset, patch_size: int = 16, *, class_names: Sequence[str] | None = None) -> None:
        pairs = [dataset[index] for index in range(len(dataset))]
        self.images = torch.stack([image for image, _ in pairs])  # (N, C, H, W)
        self.masks = torch.stack([torch.as_tensor(mask).long() for _, mask in pairs])  # (N, H, W)
        height, width = self.masks.shape[1:]
        if patch_size < 1 or height % patch_size or width % patch_size:
            raise ValueError(f"patch_size must divide the tiles' size {height} × {width}, got {patch_size}")
        self.patch_size = patch_size
        self.class_names = class_names_of(dataset, class_names)
        self.labelled = torch.zeros(len(pairs), height // patch_size, width // patch_size, dtype=torch.bool)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def labelled_pixels(self) -> int:
        """Pixels revealed so far."""
        return int(self.labelled.sum()) * self.patch_size**2

    def label_tiles(self, tiles: Sequence[int]) -> None:
        """Reveal whole tiles (the few annotated tiles a project starts from)."""
        self.labelled[list(tiles)] = True

    def reveal(self, patches: Sequence[Patch]) -> None:
        """The annotator labels these patches: their true mask is used from now on."""
        for patch in patches:
            self.labelled[patch.tile, patch.row // self.patch_size, patch.col // self.patch_size] = True

    def paint(self, tile: int, mask: torch.Tensor) -> None:
        """A learner's own labels for one tile: ``mask (H, W)`` classes, ``IGNORE_INDEX`` where not painted.

        The painted pixels replace the truth there, and every patch touched counts as labelled.
        """
        mask = torch.as_tensor(mask).long()
        if mask.shape != self.masks.shape[1:]:
            raise ValueError(f"mask must be {tuple(self.masks.shape[1:])}, got {tuple(mask.shape)}")
        painted = mask != IGNORE_INDEX
        self.masks[tile] = torch.where(painted, mask, self.masks[tile])
        touched = F.max_pool2d(painted[None, None].float(), self.patch_size)[0, 0] > 0
        self.labelled[tile] |= touched

    def label_mask(self) -> torch.Tensor:
        """``(N, H, W)`` what training sees: the true class in labelled patches, ``IGNORE_INDEX`` elsewhere."""
        revealed = self.labelled.repeat_interleave(self.patch_size, 1).repeat_interleave(self.patch_size, 2)
        return torch.where(revealed, self.masks, IGNORE_INDEX)

    def training_data(self) -> PartialLabels:
        """The tiles with at least one labelled patch, masks ``IGNORE_INDEX`` outside the labels: for ``fit``."""
        tiles = torch.nonzero(self.labelled.flatten(1).any(1)).flatten()
        if len(tiles) == 0:
            raise ValueError("nothing is labelled yet: label_tiles(...) or reveal(...) some patches first")
        return PartialLabels(self.images[tiles], self.label_mask()[tiles], self.class_names)

    def patch_scores(self, uncertainty: torch.Tensor) -> torch.Tensor:
        """``(N, H / p, W / p)`` mean of ``uncertainty (N, H, W)`` over each patch."""
        return F.avg_pool2d(uncertainty[:, None].float(), self.patch_size)[:, 0]

    def unlabelled_patches(self) -> list[Patch]:
        """Every patch not revealed yet, in tile, row, column order."""
        indices = torch.nonzero(~self.labelled)
        return [Patch(int(t), int(r) * self.patch_size, int(c) * self.patch_size, self.patch_size)
                for t, r, c in indices]  # fmt: skip


class PartialLabels(Dataset):
    """``(image, mask)`` pairs whose masks are ``IGNORE_INDEX`` wherever no label was given."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, class_names: Sequence[str]) -> None:
        self.images, self.masks, self.class_names = images, masks, list(class_names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.masks[index]


def uncertainty_maps(model: nn.Module, pool: AnnotationPool, measure: str = "entropy") -> torch.Tensor:
    """``(N, H, W)`` the model's uncertainty (``"entropy"`` or ``"margin"``) on every tile of the pool."""
    if measure not in UNCERTAINTY_MEASURES:
        raise ValueError(f"measure must be one of {', '.join(UNCERTAINTY_MEASURES)}, got {measure!r}")
    return torch.stack([UNCERTAINTY_MEASURES[measure](predict_proba(model, image)) for image in pool.images])


def propose_patches(
    model: nn.Module,
    pool: AnnotationPool,
    count: int,
    *,
    strategy: str = "uncertainty",
    measure: str = "entropy",
    rng: np.random.Generator | None = None,
) -> list[Patch]:
    """The ``count`` unlabelled patches to annotate next.

    Args:
        model: the model as trained so far.
        pool: the tiles and what is labelled.
        count: how many patches (fewer if fewer are left).
        strategy: ``"uncertainty"``: the patches of highest mean uncertainty; ``"random"``: any, drawn by ``rng``.
        measure: ``"entropy"`` or ``"margin"`` (for ``"uncertainty"``).
        rng: the random generator of ``"random"`` (default: seeded with 0).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    candidates = pool.unlabelled_patches()
    count = min(count, len(candidates))
    if strategy == "random":
        rng = rng if rng is not None else np.random.default_rng(0)
        return [candidates[i] for i in sorted(rng.choice(len(candidates), size=count, replace=False))]
    scores = pool.patch_scores(uncertainty_maps(model, pool, measure))  # (N, H / p, W / p)
    scored = [dataclasses.replace(p, score=float(scores[p.tile, p.row // p.size, p.col // p.size])) for p in candidates]
    return sorted(scored, key=lambda patch: -patch.score)[:count]


# ---- 4. the rounds -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ActiveRound:
    """The model after one round of annotating and training."""

    round: int  # 0: trained on the first tiles only
    labelled_pixels: int  # pixels annotated so far
    iou: list[float]  # per-class IoU on the validation tiles
    dice: list[float]  # per-class Dice on the validation tiles
    mean_iou: float  # mean IoU over the classes
    patches: list[Patch]  # the patches revealed before this round's training (none in round 0)
    status: str = "completed"  # how the round's training ended: "completed" or "stopped"


class ActiveLearner:
    """One model learning from an :class:`AnnotationPool` round by round: what :func:`active_learning` loops over and
    the annotation view drives a click at a time.

    Args:
        model: trained in place.
        pool: the tiles to annotate (patches are revealed in it).
        val_data: tiles to score each round on (fully labelled, never trained on).
        config: each round's training (give ``max_iters``); the batch shrinks to the labelled tiles if fewer.
        seed: seeds the random strategy (each round's training uses ``config.seed`` plus the round's number).
        callbacks: passed to every round's ``fit``.
        cpu_share: every round takes turns for the machine's cores with the runs of other processes (see
            :class:`~segtutor.train.CpuShare`); None trains whenever it likes.

    Attributes:
        rounds: the :class:`ActiveRound` s so far.
    """

    def __init__(self, model: nn.Module, pool: AnnotationPool, val_data: Dataset, config: TrainConfig, *,
                 seed: int = 0, callbacks: Sequence[Callback] = (),
                 cpu_share: CpuShare | None = None) -> None:  # fmt: skip
        if config.max_iters is None:
            raise ValueError("give each round a step budget: TrainConfig(max_iters=...)")
        self.model, self.pool, self.val_data, self.config = model, pool, val_data, config
        self.callbacks = list(callbacks)
        self.cpu_share = cpu_share
        self.rng = np.random.default_rng(seed)
        self.rounds: list[ActiveRound] = []

    def propose(self, count: int, *, strategy: str = "uncertainty", measure: str = "entropy") -> list[Patch]:
        """The ``count`` patches to annotate next (see :func:`propose_patches`)."""
        return propose_patches(self.model, self.pool, count, strategy=strategy, measure=measure, rng=self.rng)

    def train_round(self, patches: Sequence[Patch] = (), control: TrainingControl | None = None) -> ActiveRound:
        """Reveal ``patches`` (the annotator labels them), train on every label from the current weights, and score.

        Raises:
            RuntimeError: if the round's training diverged or failed (the message says why).
        """
        self.pool.reveal(patches)
        data = self.pool.training_data()
        if self.config.loss is None:  # chosen once, from round 0's labels, so that every round trains the same loss
            balance = class_balance(data)  # (K,) shares, K from the labels seen: padded to every class of the pool
            choice = choose_loss(np.pad(balance, (0, max(len(self.pool.class_names) - len(balance), 0))))
            weights = self.config.class_weights if self.config.class_weights is not None else choice.class_weights
            self.config = dataclasses.replace(self.config, loss=choice.loss, class_weights=weights)
        index = len(self.rounds)
        config = dataclasses.replace(self.config, batch_size=min(self.config.batch_size, len(data)),
                                     eval_every=self.config.max_iters, seed=self.config.seed + index)  # fmt: skip
        history = fit(self.model, data, self.val_data, config, self.callbacks, control,
                      class_names=self.pool.class_names, cpu_share=self.cpu_share)  # fmt: skip
        if history.status not in ("completed", "stopped") or not history.evaluations:
            raise RuntimeError(f"round {index} ended {history.status}: {history.message}")
        last = history.evaluations[-1]
        result = ActiveRound(index, self.pool.labelled_pixels, last.iou, last.dice, last.mean_iou, list(patches),
                             history.status)  # fmt: skip
        self.rounds.append(result)
        return result


def active_learning(
    model: nn.Module,
    pool: AnnotationPool,
    val_data: Dataset,
    config: TrainConfig,
    *,
    rounds: int = 4,
    patches_per_round: int = 8,
    strategy: str = "uncertainty",
    measure: str = "entropy",
    first_tiles: Sequence[int] = (0, 1),
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    on_round: Callable[[ActiveRound], None] | None = None,
    cpu_share: CpuShare | None = None,
) -> list[ActiveRound]:
    """Annotate, train, score, repeat: round 0 trains on ``first_tiles``, each later round reveals
    ``patches_per_round`` patches chosen by ``strategy`` and trains on from the same weights (an
    :class:`ActiveLearner`'s rounds).

    Args:
        model: trained in place.
        pool: the tiles to annotate (modified: patches are revealed).
        val_data: tiles to score each round on.
        config: each round's training (give ``max_iters``).
        rounds: annotation rounds after round 0.
        patches_per_round: patches revealed per round.
        strategy: ``"uncertainty"`` or ``"random"``.
        measure: ``"entropy"`` or ``"margin"``.
        first_tiles: tiles labelled whole before round 0 (already labelled patches stay labelled).
        seed: seeds the random strategy.
        callbacks: passed to every round's ``fit``.
        on_round: called with each :class:`ActiveRound` as it is done.
        cpu_share: every round takes turns for the machine's cores (see :class:`ActiveLearner`).

    Returns:
        One :class:`ActiveRound` per round, round 0 first.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    learner = ActiveLearner(model, pool, val_data, config, seed=seed, callbacks=callbacks, cpu_share=cpu_share)
    pool.label_tiles(first_tiles)
    for index in range(rounds + 1):
        patches = learner.propose(patches_per_round, strategy=strategy, measure=measure) if index else []
        result = learner.train_round(patches)
        if on_round is not None:
            on_round(result)
    return learner.rounds


def compare_strategies(
    make_model: Callable[[int], nn.Module],
    dataset: Dataset,
    val_data: Dataset,
    config: TrainConfig,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    strategies: Sequence[str] = STRATEGIES,
    patch_size: int = 16,
    cpu_share: CpuShare | None = None,
    **rounds: object,
) -> dict[str, list[list[ActiveRound]]]:
    """:func:`active_learning` for each strategy and seed, from the same start: the curves of IoU against pixels.

    For each seed both strategies start from the same model (``make_model(seed)``) and the same two first tiles
    (drawn by the seed, unless ``first_tiles`` is given), trained the same way in round 0: only the choice of
    patches differs.

    Args:
        make_model: builds a fresh model for a seed, e.g. ``lambda seed: create_model("unet", size="tiny", seed=seed)``.
        dataset: the tiles to annotate (a new pool per run).
        val_data: tiles to score on.
        config: each round's training.
        seeds: one run per seed and strategy.
        strategies: which ones.
        patch_size: side of the patches.
        cpu_share: every round of every run takes turns for the machine's cores (see :class:`ActiveLearner`).
        **rounds: passed to :func:`active_learning` (``rounds``, ``patches_per_round``, ``measure``, ``first_tiles``).

    Returns:
        ``{strategy: [rounds of seed 0, rounds of seed 1, …]}``.
    """
    results: dict[str, list[list[ActiveRound]]] = {strategy: [] for strategy in strategies}
    for seed in seeds:
        start = make_model(seed)
        first = rounds.get("first_tiles", np.random.default_rng(seed).choice(len(dataset), 2, replace=False).tolist())
        for strategy in strategies:
            pool = AnnotationPool(dataset, patch_size)
            run = active_learning(copy.deepcopy(start), pool, val_data, dataclasses.replace(config, seed=seed),
                                  strategy=strategy, seed=seed, cpu_share=cpu_share,
                                  **{**rounds, "first_tiles": first})  # fmt: skip
            results[strategy].append(run)
    return results
