"""The training loop: steps 2 to 6 of the course, one optimizer step at a time. The package's only loop.

Each step (1) takes the next batch of images and masks, (2) passes the images through the network, (3) compares
the logits with the masks (the loss), (4) backpropagates and (5) lets the optimizer update the weights.
:class:`Trainer` does one step per call; :meth:`Trainer.run` is the loop over it that honours pause, resume and
stop requests, and :func:`fit` builds a Trainer and runs it. Everything that trains goes through here: notebooks
call :func:`fit`, the training dashboard and the architecture race run :meth:`Trainer.run` in a worker thread
(:mod:`segtutor.train.background`) and hear about progress through callbacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from segtutor.data import class_balance
from segtutor.device import check_device, default_device
from segtutor.metrics import ConfusionMatrix
from segtutor.models import evaluating
from segtutor.models.transfer import check_input_statistics
from segtutor.train.callbacks import Callback, TrainState
from segtutor.train.checks import (
    WeightSnapshot,
    absurd_lr,
    check_batch,
    check_values,
    end_note,
    explain_collate_errors,
    loss_limit,
    loss_problem,
    lr_advice,
    predicts_sanely,
    shared_data,
)
from segtutor.train.config import TrainConfig
from segtutor.train.control import TrainingControl
from segtutor.train.distributed import Distributed
from segtutor.train.history import Evaluation, History
from segtutor.train.losses import SegmentationLoss, choose_loss
from segtutor.train.sharing import CpuShare, CpuTurn


class Trainer:
    """One training run, driven step by step.

    The model is moved to the run's device and trained in place: however the run ends, the model holds the
    last good weights and :attr:`history` holds every number.

    Args:
        model: any module mapping ``images (N, C, H, W)`` to ``logits (N, K, H, W)``.
        train_data: a ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)`` pairs.
        val_data: the same kind of ``Dataset`` for evaluation, or None.
        config: the run's settings; those left at None are the model's recommendation (:meth:`TrainConfig.resolve`),
            and :attr:`config` holds the resolved ones.
        callbacks: hooks told about progress (see :class:`~segtutor.train.Callback`).
        control: pause / resume / stop / learning-rate requests from another thread; a fresh one if None.
        class_names: names of the classes; default: ``train_data.class_names`` if present, else
            ``"class 0"``, ``"class 1"``, ...
        distributed: this process's place in a run over several processes (from
            :func:`~segtutor.train.distributed.init_distributed`, under torchrun), or None for one process. Each
            process then trains a DistributedDataParallel copy of the model on its share of every batch
            (``config.batch_size`` is the batch of all processes together) and scores its share of ``val_data``;
            the processes agree on every loss, on the clock and on the scores, so they stop on the same step.
            Requests to a ``control`` reach one process only: give a run over several processes a budget.
        cpu_share: take turns for the machine's cores with the runs of other processes (a class of learners on one
            server, :mod:`segtutor.train.sharing`); None trains whenever it likes. Only for one process on a CPU:
            ignored on other devices and with ``distributed``.

    Example:
        >>> trainer = Trainer(model, train_data, val_data, TrainConfig(max_iters=100))
        >>> history = trainer.run()  # the loop of fit(); or step by step:
        >>> while not trainer.finished:
        ...     trainer.step()
        ...     if trainer.should_evaluate():
        ...         trainer.evaluate()
        >>> history = trainer.end()  # a last evaluation, then the callbacks' on_train_end
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset,
        val_data: Dataset | None,
        config: TrainConfig,
        *,
        callbacks: Sequence[Callback] = (),
        control: TrainingControl | None = None,
        class_names: list[str] | None = None,
        distributed: Distributed | None = None,
        cpu_share: CpuShare | None = None,
    ):
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        names = class_names if class_names is not None else getattr(train_data, "class_names", None)
        self._loss_note = ""  # why the loss is what it is, when the data chose it
        self._chosen_weights = False  # class weights chosen from the data (fitted to the model's outputs at step 1)
        if config.loss is None:  # the data's class balance chooses: a rare class gets the Dice term and weights
            choice = choose_loss(class_balance(train_data), names or ())
            self._chosen_weights = config.class_weights is None and choice.class_weights is not None
            weights = choice.class_weights if self._chosen_weights else config.class_weights
            config = dataclasses.replace(config, loss=choice.loss, class_weights=weights)
            self._loss_note = f". Loss {choice.loss}: {choice.reason}" if choice.loss != "cross_entropy" else ""
        config = config.resolve(model)  # settings left at None: the model's recommendation (its training_defaults)
        if len(train_data) < config.batch_size:
            raise ValueError(
                f"train_data has {len(train_data)} samples, fewer than batch_size={config.batch_size}: "
                "every step needs a full batch; lower batch_size or add data"
            )
        if control is not None and control.stop_requested:
            raise ValueError(
                "this TrainingControl was stopped already (the run it steered has ended): give each run a new "
                "TrainingControl()"
            )
        self.config = config
        self.device = check_device(config.device) if config.device is not None else default_device()

        # 1) the model, laid out for the device: channels_last on GPUs and where the model gains on a CPU, bfloat16
        #    autocast on GPUs
        self.channels_last = config.channels_last
        self.amp = config.amp and self.device.type == "cuda"
        self.model = model.to(self.device, memory_format=self._memory_format)
        self.model.train()
        self.distributed = distributed
        self.cpu_share = cpu_share if self.device.type == "cpu" and distributed is None else None
        # the module the training forward runs through; DDP averages the gradients over the processes in backward()
        self._training_model = distributed.wrap(self.model) if distributed is not None else self.model
        self.loss_fn = SegmentationLoss(
            config.loss, class_weights=config.class_weights, ignore_index=config.ignore_index
        ).to(self.device)
        self.optimizer = _make_optimizer(self.model, config)
        self._buffers = list(self.model.buffers())  # batch-norm running statistics and step counts
        self._saved_buffers = [b.clone() for b in self._buffers]
        self._good_weights = WeightSnapshot(self.model)  # the weights before the last update: see _diverge

        # 2) the data: each epoch in an order drawn from seed + epoch, full batches only (batch norm and DeepLabV3's
        #    pooling need N >= 2); over several processes each takes every world_size-th sample of that order, so
        #    together they train on the batches one process would
        pin_memory = self.device.type == "cuda"
        world_size, rank, batch_size = 1, 0, config.batch_size
        if distributed is not None:
            world_size, rank = distributed.world_size, distributed.rank
            batch_size = distributed.local_batch_size(config.batch_size)  # this process's share of each batch
        self.train_loader = DataLoader(
            train_data,
            batch_size=batch_size,
            sampler=DistributedSampler(train_data, world_size, rank, shuffle=True, seed=config.seed, drop_last=True),
            drop_last=True,
            generator=torch.Generator().manual_seed(config.seed),
            num_workers=config.num_workers,
            pin_memory=pin_memory,
        )
        self.val_loader = None
        if val_data is not None:
            if distributed is not None:
                val_data = distributed.shard(val_data)  # each process scores its share
            self.val_loader = DataLoader(  # no gradients to keep: twice the batch fits in the same memory
                val_data, batch_size=2 * batch_size, num_workers=config.num_workers, pin_memory=pin_memory
            )
        shared = shared_data(train_data, val_data)
        if shared is not None:
            warnings.warn(shared, stacklevel=3)
        too_high = absurd_lr(config.optimizer, config.lr)  # said before the first step, not only after it diverged
        if too_high is not None:
            warnings.warn(too_high, stacklevel=3)
        self.iters_per_epoch = len(self.train_loader)
        self.total_iters = _total_iters(config, self.iters_per_epoch)  # None: only a time budget
        self.eval_every = config.eval_every or self.iters_per_epoch

        # 3) bookkeeping
        self.control = control if control is not None else TrainingControl()
        self.callbacks = list(callbacks)
        self.base_lr = config.lr  # peak learning rate; set_lr requests change it
        self.history = History(class_names=list(names) if names is not None else [])
        self.state = TrainState(
            model=self.model, config=config, history=self.history, control=self.control, device=self.device
        )
        self._batches: Iterator | None = None
        self._started = False
        self._first_loss: float | None = None  # the first step's loss: the scale a diverging loss is measured on
        self.interrupted_by = ""  # "Callback.hook" whose KeyboardInterrupt stopped the run, if one did

    def _fit_chosen_weights(self, num_classes: int) -> None:
        """Give the class weights chosen from the data one entry per model output (the data's sample may lack the
        last classes: they get the largest weight), once."""
        self._chosen_weights = False
        weights = self.config.class_weights
        if len(weights) != num_classes:
            weights = (weights + [max(weights)] * num_classes)[:num_classes]
            self.config.class_weights = weights
            self.loss_fn = SegmentationLoss(self.config.loss, class_weights=weights,
                                            ignore_index=self.config.ignore_index).to(self.device)  # fmt: skip

    # ---- the run's progress ------------------------------------------------------------------------------
    @property
    def iteration(self) -> int:
        """Optimizer steps done."""
        return self.state.iteration

    @property
    def progress(self) -> float:
        """Share of the budget used, 0 to 1: the largest of steps, epochs and seconds used."""
        shares = [0.0]
        if self.total_iters is not None:
            shares.append(self.iteration / self.total_iters)
        if self.config.max_seconds is not None:
            shares.append(self.history.train_seconds / self.config.max_seconds)
        return min(max(shares), 1.0)

    @property
    def finished(self) -> bool:
        """True once the budget is used up or the run has ended (stopped, diverged, error)."""
        return self.history.status != "running" or self.progress >= 1.0

    def scheduled_lr(self) -> float:
        """The learning rate for the next step: ``base_lr``, scaled by the cosine schedule if chosen."""
        if self.config.schedule == "constant":
            return self.base_lr
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * self.progress))

    # ---- one step ------------------------------------------------------------------------------------------
    def step(self) -> float:
        """One optimizer step on the next training batch.

        A non-finite loss or gradient, or a loss that explodes (:func:`~segtutor.train.checks.loss_limit`), ends the
        run as ``"diverged"`` before the weights are touched: the model keeps the previous step's weights (or, if
        those already predict nonsense, the ones before), and ``history.message`` says what to try. Bad data (NaN
        pixels, 0-255 values, labels the model cannot predict) is an error that names the samples, before the loss.

        Returns:
            The step's training loss (NaN or inf when it diverged).
        """
        if self.history.status != "running":
            raise RuntimeError(f"this run has ended ({self.history.status}): {self.history.message}")
        self.start()
        new_lr = self.control.take_lr()
        if new_lr is not None:
            self.base_lr = new_lr
        lr = self.scheduled_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        started = time.perf_counter()

        # 1) the next batch, on the device
        batch = self._next_batch()  # on the CPU
        images, masks = self._to_device(*batch)
        if self.iteration == 0:  # a pretrained encoder's input: its scale (error) and colours (warning)
            check_input_statistics(self.model, images)
        # 2) forward, remembering the batch-norm statistics in case this step goes wrong
        for saved, buffer in zip(self._saved_buffers, self._buffers):
            saved.copy_(buffer)
        with self._autocast():
            logits = self._training_model(images)  # (N, K, H, W)
        # 3) the loss (the batch's values checked first: a label the model cannot predict crashes it), 4) gradients
        check_values(*batch, num_classes=_check_logits(logits, masks).shape[1], ignore_index=self.config.ignore_index,
                     dataset=self.train_loader.dataset, what="training")  # fmt: skip
        if self._chosen_weights:
            self._fit_chosen_weights(max(logits.shape[1], 2))
        loss = self.loss_fn(logits, masks)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # 5) the update, only if every number is finite and the loss has not exploded: a diverging step never
        #    touches the weights; the weights it was computed on are kept, to go back to if the next step diverges
        loss_value = loss.item()
        problem = loss_problem(loss_value, self._first_loss) or self._non_finite()
        if self.distributed is not None:  # one decision for every process: the whole batch's loss, anyone's problem
            loss_value, problem = self.distributed.agree(loss_value, problem)
        if self._first_loss is None and math.isfinite(loss_value):
            self._first_loss = loss_value
        if problem is not None:
            self._diverge(problem, lr, images, masks)
            return loss_value
        self._good_weights.save()
        self.optimizer.step()

        seconds = time.perf_counter() - started
        if self.distributed is not None:  # one clock for every process: the same schedule, the same last step
            (seconds,) = self.distributed.mean(seconds)
        self.history.seconds.append(self.history.train_seconds + seconds)
        self.history.losses.append(loss_value)
        self.history.lrs.append(lr)
        self.history.images_seen += self.config.batch_size  # a full batch (of all processes together)
        self.state.iteration += 1
        self.state.loss, self.state.lr, self.state.progress = loss_value, lr, self.progress
        self.notify("on_iteration")
        return loss_value

    def should_evaluate(self) -> bool:
        """True when the step just done is one to evaluate after (every ``eval_every`` steps)."""
        return self.val_loader is not None and self.iteration > 0 and self.iteration % self.eval_every == 0

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """Validation loss, per-class IoU and Dice of the current weights; appended to the history.

        Runs in ``model.eval()`` (batch norm uses its running statistics) and puts the model back in training
        mode afterwards.
        """
        if self.val_loader is None:
            raise ValueError("this Trainer has no val_data to evaluate on")
        started = time.perf_counter()
        if self.distributed is not None:  # every process scores the same model: process 0's batch-norm statistics
            self.distributed.broadcast_buffers(self.model)
        scores, total_loss, count = None, 0.0, 0
        with evaluating(self.model), explain_collate_errors("validation"):
            for batch in self.val_loader:
                images, masks = self._to_device(*batch)
                with self._autocast():
                    logits = self.model(images)  # (N, K, H, W)
                check_values(*batch, num_classes=_check_logits(logits, masks).shape[1],
                             ignore_index=self.config.ignore_index, dataset=self.val_loader.dataset,
                             what="validation")  # fmt: skip
                total_loss += self.loss_fn(logits, masks).item() * len(images)
                count += len(images)
                if scores is None:
                    num_classes = max(logits.shape[1], 2)  # one channel: binary, two classes
                    scores = ConfusionMatrix(
                        num_classes, ignore_index=self.config.ignore_index, class_names=self._class_names(num_classes)
                    )
                scores.update(masks, logits)
        if scores is None:
            raise ValueError("val_data is empty: give at least one (image, mask) pair")
        if self.distributed is not None:  # each process scored its share of val_data: add the shares up
            total_loss, count = self.distributed.sum(total_loss, count)
            self.distributed.sum_(scores.matrix)
        result = scores.compute()
        evaluation = Evaluation(
            iteration=self.iteration,
            seconds=self.history.train_seconds,
            loss=total_loss / count,
            iou=result.iou,
            dice=result.dice,
            pixel_accuracy=result.pixel_accuracy,
            mean_iou=result.mean_iou,
            eval_seconds=time.perf_counter() - started,
        )
        self.history.evaluations.append(evaluation)
        self.state.evaluation = evaluation
        self.notify("on_evaluate")
        return evaluation

    # ---- start and end -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Set the CPU threads and tell the callbacks the run starts (done by the first :meth:`step` if needed).

        Call it in the thread that trains: torch's thread count set in a worker thread holds for that thread.
        """
        if not self._started:
            self._started = True
            torch.manual_seed(self.config.seed)  # dropout and any other randomness inside the model
            if self.config.num_threads is not None:
                torch.set_num_threads(self.config.num_threads)
            self._check_val_data()
            self.notify("on_train_start")

    def run(self) -> History:
        """Train until the budget is used up, a stop is requested or the loss diverges: the loop of :func:`fit`.

        Between two steps the loop (1) waits while paused, waking every ``control.tick_seconds`` to call the
        callbacks' ``on_wait``, (2) ends the run if a stop was requested, (3) with a ``cpu_share``, waits for a free
        core of the machine the same way (``state.waiting_ahead`` says how many runs wait first), then (4) takes one
        step, and evaluates when one is due, holding ``control.step_lock`` meanwhile. Randomness comes from
        ``config.seed`` and torch's global generator is left as it was; the CPU thread count is restored at the end.

        Returns:
            The history; ``history.status`` says how the run ended. An error is recorded (status ``"error"``,
            ``state.traceback``) and raised; interrupting the kernel ends the run as ``"stopped"``.
        """
        previous_threads = torch.get_num_threads()
        control = self.control
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        turn = None
        try:
            with torch.random.fork_rng(devices=cuda):
                self.start()
                if self.cpu_share is not None:
                    turn = self.cpu_share.join(threads=torch.get_num_threads())
                paused = False
                while not self.finished:
                    if not control.wait_while_paused(control.tick_seconds):  # 1) paused: tell the views, wait on
                        paused = True
                        if turn is not None:
                            turn.pause()  # a paused run leaves the machine's cores to the others
                        self.notify("on_wait")
                        continue
                    if paused:  # resumed: the views say so before the next step
                        paused = False
                        self.notify("on_wait")
                    if control.stop_requested:  # 2) stopped: the model keeps its weights, the curves a last score
                        if turn is not None and not turn.holding:
                            turn.pause()  # it was waiting for a core: out of the line (and of the views' count)
                        with control.step_lock:
                            return self.end("stopped", f"stopped on request after {self.iteration} steps")
                    if turn is not None and not self._take_turn(turn):  # 3) every core busy: wait in line
                        continue
                    with control.step_lock:  # 4) one step, and an evaluation when one is due
                        self.step()
                        if self.should_evaluate() and self.history.status == "running":
                            self.evaluate()
                    if turn is not None:
                        turn.after_step()  # after its share of time, the next run in line gets the core
                with control.step_lock:
                    return self.end("completed")  # a no-op if the run ended already (diverged)
        except KeyboardInterrupt:
            how = f"{self.interrupted_by} raised" if self.interrupted_by else "interrupted"  # a callback, or the kernel
            return self.end("stopped", f"{how} (KeyboardInterrupt) after {self.iteration} steps",
                            final_evaluation=False)  # fmt: skip
        except Exception as error:
            self.fail(error)
            raise
        finally:
            if turn is not None:
                turn.leave()
            torch.set_num_threads(previous_threads)
            # DDP's reducer holds the process group and gloo's work: let it go now, not at interpreter exit (a
            # process freeing it then aborts, SIGABRT)
            self._training_model = self.model

    def end(self, status: str = "completed", message: str = "", *, final_evaluation: bool = True) -> History:
        """End the run: a last evaluation if it completed or was stopped, then the callbacks' ``on_train_end``.

        The last evaluation (skipped if this very step was evaluated already) makes the curves end with the scores
        of the model the learner keeps.

        Args:
            status: ``"completed"``, ``"stopped"``, ``"diverged"`` or ``"error"``; a run ends only once.
            message: why it ended; a default sentence if empty.
            final_evaluation: False skips the last evaluation (an interrupted kernel should stop at once).

        Returns:
            The history.
        """
        if self.history.status != "running":
            return self.history  # ended already
        evaluated = bool(self.history.evaluations) and self.history.evaluations[-1].iteration == self.iteration
        if final_evaluation and status in ("completed", "stopped") and self.val_loader is not None:
            if self.iteration > 0 and not evaluated:
                self.evaluate()
        self.history.status = status
        self.history.message = message or (
            f"{self.iteration} steps in {self.history.train_seconds:.1f} s of training{self._loss_note}"
        )
        if status in ("completed", "stopped"):
            self.history.message += end_note(self.history, self._first_loss, self.config, self.base_lr)
        self.notify("on_train_end")
        return self.history

    def notify(self, hook: str) -> None:
        """Call hook ``hook`` (e.g. ``"on_wait"``) of every callback with the run's state.

        Every callback hears it even if one raises (a dashboard listed after a broken callback still learns
        that the run ended); the first exception is raised afterwards.
        """
        first = None
        for callback in self.callbacks:
            try:
                getattr(callback, hook)(self.state)
            except BaseException as error:  # noqa: BLE001 (re-raised below, after the other callbacks)
                if first is None:
                    first = error
                    if isinstance(error, KeyboardInterrupt):
                        self.interrupted_by = f"{type(callback).__name__}.{hook}"
        if first is not None:
            raise first

    def fail(self, error: BaseException) -> None:
        """Record an exception as the run's end (status ``"error"``, its traceback in ``state.traceback``).

        The exception gets the run's history as ``error.history``, so the steps done are not lost with it.
        """
        self.state.traceback = "".join(traceback.format_exception(error))
        with contextlib.suppress(AttributeError):  # a few built-in exceptions take no attributes
            error.history = self.history
        self.end("error", f"{type(error).__name__}: {error}", final_evaluation=False)

    # ---- internals ---------------------------------------------------------------------------------------
    def _take_turn(self, turn: CpuTurn) -> bool:
        """Wait up to a tick for a core; on getting one, use as many torch threads as the share gives."""
        if turn.acquire(self.control.tick_seconds):
            if turn.threads != torch.get_num_threads():
                torch.set_num_threads(turn.threads)  # 1 when several runs share the cores, all when alone
            self.state.runs_sharing = turn.runs
            if self.state.waiting_ahead is not None:  # it waited: the views say it trains again
                self.state.waiting_ahead = None
                self.notify("on_wait")
            return True
        self.state.waiting_ahead, self.state.runs_sharing = turn.ahead, turn.runs
        self.notify("on_wait")
        return False

    @property
    def _memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast where it pays (CUDA), nothing elsewhere: the same loop for every device."""
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        with explain_collate_errors("training"):
            if self._batches is None:
                self._batches = self._epoch_batches()
            try:
                return next(self._batches)
            except StopIteration:
                self.state.epoch += 1
                self._batches = self._epoch_batches()
                return next(self._batches)

    def _epoch_batches(self) -> Iterator:
        self.train_loader.sampler.set_epoch(self.state.epoch)  # this epoch's order of the samples
        dataset = self.train_loader.dataset
        if hasattr(dataset, "set_epoch"):  # augmentations drawn per epoch (segtutor datasets), as in DDP samplers
            dataset.set_epoch(self.state.epoch)
        return iter(self.train_loader)

    def _to_device(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_batch(images, masks)
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self._memory_format)
        masks = masks.to(self.device, dtype=torch.int64, non_blocking=True)
        return images, masks

    def _non_finite(self) -> str | None:
        # One sum per tensor: any inf or nan inside makes the total inf or nan (one number to check, one sync).
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if grads and not torch.stack([g.sum() for g in grads]).sum().isfinite():
            return "the gradients became inf or nan"
        statistics = [b for b in self._buffers if b.is_floating_point()]
        if statistics and not torch.stack([b.sum() for b in statistics]).sum().isfinite():
            return "the batch-norm statistics became inf or nan"
        return None

    @torch.no_grad()
    def _check_val_data(self) -> None:
        """Run the first validation batch through every check and the model, so that bad validation data is an
        error before the first step, not at the first evaluation."""
        if self.val_loader is None:
            return
        with evaluating(self.model), explain_collate_errors("validation"):
            batch = next(iter(self.val_loader), None)
            if batch is None:
                raise ValueError("val_data is empty: give at least one (image, mask) pair, or val_data=None")
            images, masks = self._to_device(*batch)
            with self._autocast():
                logits = _check_logits(self.model(images), masks)  # (N, K, H, W)
            check_values(*batch, num_classes=logits.shape[1], ignore_index=self.config.ignore_index,
                         dataset=self.val_loader.dataset, what="validation")  # fmt: skip
            self.loss_fn(logits, masks)
            self._class_names(max(logits.shape[1], 2))

    def _diverge(self, problem: str, lr: float, images: torch.Tensor, masks: torch.Tensor) -> None:
        """End the run as diverged, keeping the last weights that still predict sane numbers on this batch."""
        for saved, buffer in zip(self._saved_buffers, self._buffers):
            buffer.copy_(saved)
        self.optimizer.zero_grad(set_to_none=True)
        step = self.iteration
        limit = loss_limit(self._first_loss if self._first_loss is not None else 1.0)
        kept = f"the weights of step {step}" if step else "its starting weights"
        outcome = f"so the model keeps {kept}"
        if step and not predicts_sanely(self.model, images, masks, self.loss_fn, limit, self._autocast):
            self._good_weights.restore()  # the last update broke the weights: back to those from before it
            before = f"those of step {step - 1}" if step > 1 else "its starting weights"
            outcome = f"and {kept} already predict nonsense, so the model goes back to {before}"
        if predicts_sanely(self.model, images, masks, self.loss_fn, limit, self._autocast):
            outcome += ", the last good ones"
        else:
            outcome += f" (whose step was finite, but in eval mode they too give a loss above {limit:.3g} on this "
            outcome += "batch: build the model again and train it from new weights)"
        self.end(
            "diverged",
            f"Training diverged: {problem} at step {self.iteration + 1} with lr={lr:.3g}. That update was skipped, "
            f"{outcome}. {lr_advice(self.config.optimizer, self.base_lr)}",
        )

    def _class_names(self, num_classes: int) -> list[str]:
        if not self.history.class_names:
            self.history.class_names = [f"class {c}" for c in range(num_classes)]
        if len(self.history.class_names) != num_classes:
            raise ValueError(
                f"the model predicts {num_classes} classes but there are {len(self.history.class_names)} class "
                f"names {self.history.class_names}; build the model with num_classes={len(self.history.class_names)}"
            )
        return self.history.class_names

    def __repr__(self) -> str:
        budget = f"{self.total_iters} steps" if self.total_iters is not None else ""
        if self.config.max_seconds is not None:
            budget += (" or " if budget else "") + f"{self.config.max_seconds:g} s"
        return (
            f"Trainer({type(self.model).__name__} on {self.device}, step {self.iteration} of {budget}, "
            f"{self.history.status})"
        )


def fit(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None,
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    control: TrainingControl | None = None,
    *,
    class_names: list[str] | None = None,
    cpu_share: CpuShare | None = None,
) -> History:
    """Train ``model`` in place until the budget is used up, a stop is requested, or the loss diverges.

    Evaluates on ``val_data`` every ``config.eval_every`` steps (default: once per epoch) and at the end (also
    after a stop). Interrupting the kernel (KeyboardInterrupt) ends the run as ``"stopped"`` and keeps model and
    history; any other error is recorded in the history (status ``"error"``) and raised. See :meth:`Trainer.run`.

    Args:
        model: any module mapping ``images (N, C, H, W)`` to ``logits (N, K, H, W)``.
        train_data: a ``Dataset`` of ``(image (C, H, W) float, mask (H, W) int64)`` pairs.
        val_data: the same for evaluation, or None.
        config: the run's settings.
        callbacks: hooks told about progress.
        control: pause / resume / stop / learning-rate requests from another thread.
        class_names: names of the classes (default: ``train_data.class_names`` if present).
        cpu_share: on a CPU, take turns for the machine's cores with the runs of other processes (see
            :class:`Trainer`); None trains whenever it likes.

    Returns:
        The :class:`~segtutor.train.History`; ``history.status`` says how the run ended.

    Example:
        >>> history = fit(create_model("unet"), train_data, val_data, TrainConfig(max_seconds=20))
        >>> history.val_iou("tumor")[-1]
    """
    trainer = Trainer(
        model, train_data, val_data, config, callbacks=callbacks, control=control, class_names=class_names,
        cpu_share=cpu_share,
    )
    return trainer.run()


def warm_up_step(model: nn.Module, batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """One forward and backward pass of ``model`` in training mode on ``batch``, results thrown away.

    torch builds its kernels for each shape on first use, so the first step of a fresh kernel is several times
    slower than the next: a run (or a race) that takes this throw-away step first measures fair step times. Use a
    copy of the model (batch norm updates its statistics). Errors are ignored: the real run reports them.
    """
    try:
        device = next(model.parameters()).device
        images = torch.stack([image for image, _ in batch]).to(device)  # (N, C, H, W)
        masks = torch.stack([mask for _, mask in batch]).to(device)  # (N, H, W)
        model.train()
        nn.functional.cross_entropy(model(images), masks).backward()
    except Exception:  # noqa: BLE001
        pass


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        optimizer, settings = torch.optim.Adam, dict(lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD
        settings = dict(lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    try:
        # fused: one kernel updates every weight; on a CPU it cut Adam's step from 11-22 ms to 3-6 ms here
        return optimizer(model.parameters(), **settings, fused=True)
    except (RuntimeError, TypeError):  # a device or torch version without the fused kernel
        return optimizer(model.parameters(), **settings)


def _total_iters(config: TrainConfig, iters_per_epoch: int) -> int | None:
    budgets = []
    if config.max_iters is not None:
        budgets.append(config.max_iters)
    if config.num_epochs is not None:
        budgets.append(config.num_epochs * iters_per_epoch)
    return min(budgets) if budgets else None


def _check_logits(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(
            f"the model must return a logits tensor (N, K, H, W), got {type(logits).__name__}; "
            "for a torchvision model, return model(images)['out']"
        )
    if logits.ndim != 4 or logits.shape[0] != masks.shape[0] or logits.shape[2:] != masks.shape[1:]:
        raise ValueError(
            f"the model returned logits {tuple(logits.shape)} for masks {tuple(masks.shape)}; "
            "logits must be (N, K, H, W) at the input size"
        )
    return logits
