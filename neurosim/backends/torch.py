"""The torch backend: the discrete- and continuous-time models of ``neurosim.core`` on tensors.

An epoch is the estimator's ``train_step`` on each shuffled batch (free phase, nudged phase or
backpropagation, and the update written to the synapses), then the free phase on the test set.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable

import torch
from torch import Tensor

from neurosim.config import Config
from neurosim.data import TensorDataset
from neurosim.core.losses import Cost
from neurosim.core.models import LayeredModel
from neurosim.core.phases import StepCounter, relax
from neurosim.backends.base import Backend, Epoch, EpochMetrics, register
from neurosim.errors import DivergenceError


def one_hot(labels: Tensor, classes: int, dtype: torch.dtype) -> Tensor:
    return torch.nn.functional.one_hot(labels, classes).to(dtype)


def evaluate(model: LayeredModel, cost: Cost, dataset: TensorDataset, steps: int,
             batch_size: int = 1000, tol: float | None = None, counter: StepCounter | None = None,
             every: int = 1, per_sample: bool = False) -> tuple[float, float]:
    """Error rate and mean cost at the free fixed point (T steps from s = 0, or fewer once
    settled within ``tol``, checked every ``every`` steps, each sample on its own ``per_sample``)."""
    wrong, total_loss = 0, 0.0
    with torch.no_grad():
        for x, labels in dataset.batches(batch_size, shuffle=False):
            state = relax(model, model.prepare(x), model.init_state(x.shape[0]), steps, tol, counter, "eval", every,
                          per_sample)
            out = model.output(state)
            y = one_hot(labels, dataset.num_classes, out.dtype)
            wrong += int((cost.logits(out).argmax(1) != labels).sum())
            total_loss += float(cost.value(out, y).sum())
    return wrong / len(dataset), total_loss / len(dataset)


@register
class TorchBackend(Backend):
    """Every dynamics, estimator, batch size, device model, dtype and torch device."""

    name = "torch"

    def run_epoch(self, epoch: Epoch) -> EpochMetrics:
        from tqdm.auto import tqdm

        config, network, train_set = self.config, self.network, self.train_set
        shuffle_gen, beta_gen = epoch.generator(0), epoch.generator(1)
        batch_size = config.train.batch_size
        n_batches = -(-len(train_set) // batch_size)
        wrong = torch.zeros((), dtype=torch.int64, device=train_set.labels.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=train_set.labels.device)
        t0 = time.perf_counter()
        bar = tqdm(train_set.batches(batch_size, shuffle=True, generator=shuffle_gen), total=n_batches,
                   desc=f"epoch {epoch.number}/{epoch.epochs}", unit="batch",
                   disable=True if not epoch.progress else None,  # None: bars on a terminal only, not in log files
                   leave=False, mininterval=0.5, file=sys.stderr)
        for i, (x, labels) in enumerate(bar, 1):
            y = one_hot(labels, train_set.num_classes, x.dtype)
            try:
                step = network.estimator.train_step(x, y, beta_gen)
            except DivergenceError as exc:  # found inside the step: say where, and what is kept
                raise epoch.diverged(str(exc), i) from None
            wrong += (step.logits.argmax(1) != labels).sum()
            loss_sum += step.loss.sum()
            if i % config.train.check_every == 0 or i == n_batches:
                epoch.check_finite(step.logits, "network states", i)
                if epoch.progress:
                    bar.set_postfix(train_error=f"{int(wrong) / min(i * batch_size, len(train_set)):.2%}")
        train_seconds = time.perf_counter() - t0
        for name, p in network.model.named_parameters():  # before evaluating a diverged network
            epoch.check_finite(p, f"parameter {name}", n_batches)
        counter = network.estimator.counter
        test_error, test_loss = self.evaluate(self.test_set, counter)
        extra = counter.summary()  # the steps each phase used, with estimator.tol (empty without)
        counter.clear()
        return EpochMetrics(train_error=int(wrong) / len(train_set), test_error=test_error,
                            train_loss=float(loss_sum) / len(train_set), test_loss=test_loss,
                            train_seconds=train_seconds, extra=extra)

    def evaluate(self, dataset: TensorDataset, counter: StepCounter | None = None) -> tuple[float, float]:
        e = self.config.estimator
        return evaluate(self.network.model, self.network.cost, dataset, e.T, self.config.train.eval_batch_size,
                        e.tol, counter if e.tol is not None else None, e.tol_every, e.tol_scope == "sample")

    @classmethod
    def bench_points(cls, config: Config, estimators: Iterable[str] | None,
                     batch_sizes: Iterable[int]) -> list[tuple[str, int]]:
        """EP and BPTT by default (the README's speed table), at every batch size asked for."""
        return [(name, batch_size) for name in (estimators or ["ep", "bptt"]) for batch_size in batch_sizes]

    def bench(self, samples: int) -> dict[str, Any]:
        """Times ``train_step`` exactly as the trainer runs it, on whole batches in data order."""
        cfg, device = self.config, self.device
        network, train_set = self.network, self.train_set
        batch_size = cfg.train.batch_size
        y_all = one_hot(train_set.labels, train_set.num_classes, train_set.images.dtype)
        batches = [(x, y_all[i * batch_size:(i + 1) * batch_size])
                   for i, (x, _) in enumerate(train_set.batches(batch_size, shuffle=False, drop_last=True))]
        generator = torch.Generator().manual_seed(0)
        for x, y in batches[:3]:  # warm-up: allocator, kernels, lazy initialisations
            network.estimator.train_step(x, y, generator)
        _sync(device)
        t0 = time.perf_counter()
        for x, y in batches:
            network.estimator.train_step(x, y, generator)
        _sync(device)
        seconds = time.perf_counter() - t0
        done = len(batches) * batch_size
        return {"estimator": cfg.estimator.name, "batch_size": batch_size, "samples": done,
                "samples_per_second": round(done / seconds, 1),
                "seconds_per_60k_epoch": round(60000 * seconds / done, 2),
                "T": cfg.estimator.T, "K": cfg.estimator.K, "layers": cfg.circuit.layers,
                "device": str(device), "dtype": cfg.compute.dtype, "threads": torch.get_num_threads()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
