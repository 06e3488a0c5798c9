"""``neurosim bench`` on devices: the ratio to ideal synapses, measured in the same run."""

from __future__ import annotations

from neurosim.studies.bench import bench, format_table


def test_bench_on_devices_reports_the_ratio_to_ideal():
    rows = bench("mnist_fc1_cep", batch_sizes=[20], estimators=["cep"], samples=40, rounds=1,
                 overrides=["data.name=mnist-sample", "estimator.T=4", "estimator.K=2", "synapses.device=pcmo"])
    row = rows[0]
    assert row["synapses"] == "pcmo" and row["vs_ideal"] > 0 and row["ideal_samples_per_second"] > 0
    assert abs(row["vs_ideal"] - row["ideal_samples_per_second"] / row["samples_per_second"]) < 0.02 * row["vs_ideal"] + 0.01
    assert "vs ideal" in format_table(rows)


def test_bench_on_ideal_synapses_has_no_ratio():
    rows = bench("mnist_fc1_cep", batch_sizes=[20], estimators=["cep"], samples=40,
                 overrides=["data.name=mnist-sample", "estimator.T=4", "estimator.K=2"])
    assert "vs_ideal" not in rows[0] and "vs ideal" not in format_table(rows)
