"""Training runs on MNIST subsets: learning, outputs, resume, divergence, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import neurosim
from neurosim.cli import main
from neurosim.errors import DivergenceError, NeurosimError

from mnist_data import SAMPLE_OVERRIDES


def quick(*extra: str, epochs: int = 1, train: int = 1000, test: int = 500) -> list[str]:
    """A short run on the bundled MNIST sample (1,000 / 500 digits: the whole sample by default)."""
    return [*SAMPLE_OVERRIDES, f"train.epochs={epochs}", f"data.train_subset={train}",
            f"data.test_subset={test}", "train.check_every=5", *extra]


@pytest.mark.parametrize("experiment", ["mnist_fc1_ep", "mnist_fc1_bptt", "mnist_eb1_ep"])
def test_short_training_beats_chance_by_far(tmp_path, experiment):
    # 1000 samples, 3 epochs; the chance error is 90%, a network that does not learn stays there
    overrides = quick(epochs=3)
    result = neurosim.train(experiment, out=tmp_path / "run", overrides=overrides, progress=False)
    assert result.test_error < 0.35, result.history
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]


def test_cross_entropy_readout_trains(tmp_path):
    result = neurosim.train("mnist_fc1_ep", out=tmp_path / "run", progress=False,
                            overrides=quick("loss=cross_entropy", "circuit.layers=[784, 256, 64, 10]",
                                            "estimator.lr=[0.2, 0.1, 0.1]", "estimator.beta=0.5",
                                            "estimator.symmetric=true", epochs=3))
    assert result.test_error < 0.3, result.history


def test_run_folder_holds_config_metrics_checkpoint_result_and_plot(tmp_path):
    out = tmp_path / "run"
    result = neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=2), progress=False)
    assert {p.name for p in out.iterdir()} == {"config.yaml", "metrics.jsonl", "checkpoint.pt",
                                                "result.json", "curves.png"}
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert {"epoch", "train_error", "test_error", "train_loss", "seconds"} <= set(lines[0])
    saved = json.loads((out / "result.json").read_text())
    for key in ("test_error", "train_error", "epochs", "wall_seconds", "samples_per_second", "machine", "versions"):
        assert key in saved
    assert saved["test_error"] == result.test_error == lines[-1]["test_error"]
    assert 0 <= saved["test_error"] <= 1 and saved["epochs"] == 2
    assert neurosim.load_config(out / "config.yaml").data.train_subset == 1000
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=quick(), progress=False)
    before = (out / "result.json").read_bytes()
    with pytest.raises(NeurosimError, match="resume=True"):
        neurosim.train("mnist_fc1_ep", out=out, overrides=quick(), progress=False)
    assert (out / "result.json").read_bytes() == before


def _weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=False)["network"]


@pytest.mark.parametrize("experiment, extra", [
    ("mnist_fc1_ep", ["estimator.random_sign=true"]),
    ("mnist_fc1_bptt", ["estimator.lr_schedule=cosine", "estimator.lr_final=0.1"]),
    ("mnist_fc1_cep", ["synapses.device=levels_64", "synapses.params.dw_min_std=0.5"]),  # device noise
])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, monkeypatch, experiment, extra):
    overrides = quick(*extra, epochs=3, train=400, test=200)
    full = neurosim.train(experiment, out=tmp_path / "full", overrides=overrides, progress=False)

    from neurosim.backends.torch import TorchBackend

    real_epoch = TorchBackend.run_epoch

    def interrupted(self, epoch):
        if epoch.number == 2:  # killed in the middle of epoch 2, after some updates were applied
            self.network.estimator.train_step(self.train_set.images[:20], torch.nn.functional.one_hot(
                self.train_set.labels[:20], 10).to(self.train_set.images.dtype))
            raise KeyboardInterrupt
        return real_epoch(self, epoch)

    monkeypatch.setattr(TorchBackend, "run_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        neurosim.train(experiment, out=tmp_path / "cut", overrides=overrides, progress=False)
    monkeypatch.setattr(TorchBackend, "run_epoch", real_epoch)
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 1

    resumed = neurosim.train(experiment, out=tmp_path / "cut", overrides=overrides, resume=True, progress=False)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    for part in ("model", "cost"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), key
    _assert_same(a["synapses"], b["synapses"], "synapses")  # device noise generator, counters, states
    assert [r["test_error"] for r in resumed.history] == [r["test_error"] for r in full.history]
    assert resumed.test_error == full.test_error


def test_resume_refuses_a_changed_config(tmp_path):
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=1), progress=False)
    with pytest.raises(neurosim.ConfigError, match="estimator.beta"):
        neurosim.train("mnist_fc1_ep", out=out, overrides=quick("estimator.beta=0.3", epochs=2),
                       resume=True, progress=False)
    with pytest.raises(NeurosimError, match="does not exist"):
        neurosim.train("mnist_fc1_ep", out=tmp_path / "none", overrides=quick(), resume=True, progress=False)


def test_a_run_continues_under_another_name_with_the_same_settings(tmp_path):
    """The name labels a run, it does not change what it computes: a run extends under another."""
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=1), progress=False)
    result = neurosim.train("mnist_fc1_ep", out=out, overrides=quick("name=mnist_fc1_ep_longer", epochs=2),
                            resume=True, progress=False)
    assert [row["epoch"] for row in result.history] == [1, 2]


def test_diverging_run_stops_keeps_last_good_checkpoint_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=1), progress=False)
    good = _weights(out)
    # Same run, resumed for a second epoch with learning rates that blow the weights up.
    import neurosim.hardware.synapses as synapses

    real_apply = synapses.apply_updates

    def exploding(groups, updates, lrs):
        real_apply(groups, updates, [float("inf") for _ in lrs])

    monkeypatch.setattr("neurosim.hardware.synapses.apply_updates", exploding)
    with pytest.raises(DivergenceError, match="epoch 2.*NaN or infinite.*epoch 1"):
        neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=2), resume=True, progress=False)
    kept = _weights(out)
    for key in good["model"]:
        assert torch.equal(good["model"][key], kept["model"][key])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1

    code = main(["train", "mnist_fc1_ep", "--out", str(out), "--resume", "--quiet",
                 *[arg for o in quick(epochs=2) for arg in ("--set", o)]])
    assert code == 3
    assert "diverged" in capsys.readouterr().err


def test_a_device_write_beyond_reason_stops_the_run_and_says_where(tmp_path):
    """An absurd learning rate on devices: the weights stay inside the device range (so they never
    become NaN), but the pulse counts of one write would overflow the counters; the run stops at
    that batch, naming the write, and says what is kept."""
    out = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"epoch 1, batch 1: a device write .* pulses at one device"
                                              r".*no epoch had completed"):
        neurosim.train("mnist_fc1_ep", out=out, overrides=quick("synapses.device=levels_64",
                                                                "estimator.lr=[1e30, 1e30]"), progress=False)
    assert not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text()


def test_cli_train_prints_test_error(tmp_path, capsys):
    code = main(["train", "mnist_fc1_ep", "--out", str(tmp_path / "cli"), "--quiet",
                 *[arg for o in quick() for arg in ("--set", o)]])
    assert code == 0
    assert "test error" in capsys.readouterr().out


def test_quickstart_trains_on_the_bundled_sample_offline(tmp_path, monkeypatch, capsys):
    # The README's first command: no data folder, no network, real digits.
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setattr("neurosim.data._open_url", lambda url, timeout: pytest.fail("no download"))
    out = tmp_path / "quickstart"
    assert main(["train", "quickstart", "--out", str(out), "--quiet", "--set", "train.epochs=1"]) == 0
    config = neurosim.load_config(out / "config.yaml")
    assert config.data.name == "mnist-sample" and config.circuit.layers == [784, 512, 10]
    saved = json.loads((out / "result.json").read_text())
    assert saved["test_error"] < 0.6  # one epoch on 1,000 digits; chance is 0.9
    assert not (tmp_path / "no-data-here").exists()


def test_cli_data_dir_reads_the_full_dataset(tmp_path, capsys, mnist_dir):
    code = main(["train", "mnist_fc1_ep", "--out", str(tmp_path / "cli"), "--data-dir", str(mnist_dir),
                 "--quiet", "--set", "train.epochs=1", "--set", "data.train_subset=100",
                 "--set", "data.test_subset=100", "--set", "data.download=false"])
    assert code == 0
    assert neurosim.load_config(tmp_path / "cli" / "config.yaml").data.dir == str(mnist_dir)


def test_missing_data_is_a_clear_cli_error(tmp_path, capsys):
    code = main(["train", "mnist_fc1_ep", "--out", str(tmp_path / "run"), "--quiet",
                 "--set", f"data.dir={tmp_path / 'empty'}", "--set", "data.download=false"])
    assert code == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "f68b3c2dcbeaaa9fbdd348bbdeb94873" in err
    assert "--data-dir" in err and "NEUROSIM_DATA" in err  # how to point neurosim at the data
    assert not (tmp_path / "run").exists()  # no empty run folder left behind


def test_first_layer_must_match_the_data(tmp_path):
    with pytest.raises(neurosim.ConfigError, match="circuit.layers"):
        neurosim.train("mnist_fc1_ep", out=tmp_path / "run", progress=False,
                       overrides=quick("circuit.layers=[100, 20, 10]"))


def test_a_run_started_before_a_config_section_existed_still_resumes(tmp_path):
    out = tmp_path / "run"
    neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=1, train=200, test=100), progress=False)
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    del checkpoint["config"]["synapses"]  # as written by a version without device models
    del checkpoint["network"]["synapses"]
    torch.save(checkpoint, out / "checkpoint.pt")
    result = neurosim.train("mnist_fc1_ep", out=out, overrides=quick(epochs=2, train=200, test=100),
                            resume=True, progress=False)
    assert result.epochs == 2


def _assert_same(a, b, where: str) -> None:
    """Nested dicts/lists of tensors are equal, element for element."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_atomic_writes_get_the_mode_of_an_ordinary_new_file(tmp_path):
    import os

    from neurosim.io import atomic_write_text

    atomic_write_text(tmp_path / "result.json", "{}\n")
    (tmp_path / "plain.txt").write_text("x")
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
