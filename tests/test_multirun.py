"""``fit --multirun`` really runs each combination into its own folder."""

from __future__ import annotations

import pytest
import yaml
from tiny_runs import tiny_run_overrides

from tempo_kit.cli import main


@pytest.mark.slow
def test_multirun_fits_each_combination_in_its_own_folder(tiny_checkpoints, tiny_needle_benchmark, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "fit", "--recipe", "stage0", "--multirun", "optim.lr.projector=1e-3,2e-3",
        *tiny_run_overrides(tiny_checkpoints, tiny_needle_benchmark),
        "trainer.max_steps=1", "trainer.global_batch_size=1", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.strategy.name=auto",
        "run.export_final=false", f"run.output_dir={out}",
    ]  # fmt: skip
    assert main(argv) == 0
    listing = yaml.safe_load((out / "multirun.yaml").read_text())
    assert [run["run"] for run in listing] == [0, 1]
    for n, lr in enumerate((0.001, 0.002)):
        recipe = yaml.safe_load((out / str(n) / "recipe.yaml").read_text())
        assert recipe["optim"]["lr"]["projector"] == lr and recipe["run"]["output_dir"] == f"{out}/{n}"
        assert (out / str(n) / "checkpoints" / "last.ckpt").is_file()
    assert capsys.readouterr().out.count("# multirun ") == 2
