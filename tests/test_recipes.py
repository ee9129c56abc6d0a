"""Recipe loading: base chains, overrides, validation messages, printing and saving."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.recipes import DEFAULTS, apply_overrides, format_recipe, load_recipe, save_recipe


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def base_and_stage(tmp_path):
    write(
        tmp_path / "base.yaml",
        """
        run: {name: base-run}
        optim: {warmup_ratio: 0.03, lr: {decoder: 1.0e-5}}
        trainer: {global_batch_size: 128}
        """,
    )
    stage = write(
        tmp_path / "stage.yaml",
        """
        # tempo-kit fit --recipe stage.yaml
        base: base.yaml
        run: {name: stage-run}
        trainable: {compressor: frozen, decoder: frozen}
        optim: {lr: {projector: 1.0e-3, memory_tokens: 1.0e-3}}
        trainer: {global_batch_size: 64}
        """,
    )
    return stage


def test_base_chain_merges_key_by_key(base_and_stage):
    cfg = load_recipe(base_and_stage, check_paths=False)
    assert cfg.run.name == "stage-run"
    assert cfg.run.output_dir == "outputs/stage-run"  # interpolation resolved after the merge
    assert cfg.optim.warmup_ratio == 0.03  # from the base
    assert cfg.optim.lr.decoder == 1.0e-5 and cfg.optim.lr.projector == 1.0e-3  # merged, not replaced
    assert cfg.optim.lr.compressor == DEFAULTS["optim"]["lr"]["compressor"]  # from the kit defaults
    assert cfg.trainer.global_batch_size == 64
    assert "base" not in cfg


def test_overrides_set_and_delete(base_and_stage):
    cfg = load_recipe(
        base_and_stage,
        [
            "optim.lr.decoder=2e-5",
            "trainer.strategy.name=ddp",
            "model.projector.bias=false",
            "model.decoder.dtype=bf16",
            "~model.decoder.dtype",
        ],
        check_paths=False,
    )
    assert cfg.optim.lr.decoder == 2e-5
    assert cfg.trainer.strategy.name == "ddp"
    assert cfg.model.projector.bias is False and "dtype" not in cfg.model.decoder
    with pytest.raises(
        ConfigError, match=r"key 'optim.grad_clip' is missing \(deleted with ~optim.grad_clip\?\)"
    ):
        load_recipe(base_and_stage, ["~optim.grad_clip"], check_paths=False)
    cfg = apply_overrides(
        OmegaConf.create({"model": {"decoder": {"name": "x", "dtype": "bf16"}}}), ["~model.decoder.dtype"]
    )
    assert "dtype" not in cfg.model.decoder


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.warmup_rato=0.1", "unknown key 'optim.warmup_rato' (did you mean 'warmup_ratio'?)"),
        ("trainr.devices=2", "unknown key 'trainr' (did you mean 'trainer'?)"),
        ("trainable.projector=lora", "trainable.projector=lora is not supported"),
        ("trainable.decoder=ful", "trainable.decoder='ful' (did you mean 'full'?): use one of full, lora, frozen"),
        ("model.projector.bais=false", "unknown argument 'bais' (did you mean 'bias'?)"),
        ("model.projector.name=linar", "unknown projector 'linar' (did you mean 'linear'?)"),
        ("model.max_contxt=10", "unknown key 'model.max_contxt' (did you mean 'max_context'?)"),
        ("trainer.strategy.name=fdsp", "trainer.strategy.name='fdsp' (did you mean 'fsdp'?): use one of auto, single, ddp, fsdp"),
        ("trainer.strategy.fsdp.sharding=FULL_SHARD", "(did you mean 'sharding_strategy'?)"),
        ("trainer.micro_batch_size=3", "not a multiple of trainer.micro_batch_size=3"),
        ("optim.lr.projector=0", "optim.lr.projector=0 must be a positive number"),
        ("lora.decoder.rank=8", "unknown argument 'rank'"),
        ("optim.scheduler=step", "must be cosine, linear or constant"),
        ("nonsense", "must be key=value"),
        ("~optim.nothing", "is not in the recipe"),
        ("data.cache_clips=maybe", "data.cache_clips='maybe' must be true or false"),
    ],
)
def test_bad_recipes_get_clear_errors(base_and_stage, override, message):
    overrides = [override]
    if override.startswith("lora.decoder"):
        overrides.append("trainable.decoder=lora")
    with pytest.raises(ConfigError) as info:
        load_recipe(base_and_stage, overrides, check_paths=False)
    assert message in str(info.value)
    assert "stage.yaml" in str(info.value) or override in str(info.value)


def test_unknown_key_in_file_names_the_file(tmp_path):
    recipe = write(tmp_path / "r.yaml", "optim: {weight_decy: 0.1}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml.*'optim\.weight_decy' \(did you mean 'weight_decay'\?\)"):
        load_recipe(recipe, check_paths=False)


def test_base_loop_and_missing_base(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="base chain loops"):
        load_recipe(tmp_path / "a.yaml", check_paths=False)
    write(tmp_path / "c.yaml", "base: missing.yaml\n")
    with pytest.raises(ConfigError, match="base 'missing.yaml' not found"):
        load_recipe(tmp_path / "c.yaml", check_paths=False)
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_hub_names_are_refused_with_download_instructions(tmp_path):
    recipe = write(tmp_path / "r.yaml", "model: {decoder: {name: hf_causal_lm, pretrained: Qwen/Qwen3-4B}}\n")
    with pytest.raises(CheckpointError) as info:
        load_recipe(recipe)
    text = str(info.value)
    assert "model.decoder.pretrained='Qwen/Qwen3-4B' is not a local folder" in text
    assert "hf download Qwen/Qwen3-4B --local-dir checkpoints/Qwen3-4B" in text
    recipe = write(
        tmp_path / "c.yaml", "model: {decoder: {name: hf_causal_lm, pretrained: checkpoints/Qwen3-4B}}\n"
    )
    with pytest.raises(
        CheckpointError, match="'checkpoints/Qwen3-4B' is not a local folder. Download the checkpoint"
    ):
        load_recipe(recipe)
    recipe = write(
        tmp_path / "v.yaml",
        "model: {compressor: {name: qwen3_vl, pretrained: checkpoints/Qwen3-VL-2B-Instruct}}\n",
    )
    with pytest.raises(CheckpointError) as info:
        load_recipe(recipe)
    assert (
        "hf download Qwen/Qwen3-VL-2B-Instruct --local-dir checkpoints/Qwen3-VL-2B-Instruct"
        in str(info.value)
    )
    recipe = write(tmp_path / "s.yaml", "run: {init_from: outputs/nothing/final}\n")
    with pytest.raises(
        CheckpointError, match="init_from='outputs/nothing/final' is not a local folder. It is the prev"
    ):
        load_recipe(recipe)


def test_print_and_save_round_trip(base_and_stage, tmp_path, capsys):
    from tempo_kit.cli import main

    cfg = load_recipe(base_and_stage, ["optim.lr.decoder=3e-5"], check_paths=False)
    saved = save_recipe(cfg, tmp_path / "run" / "recipe.yaml", command="tempo-kit fit --recipe stage.yaml")
    assert saved.read_text().startswith("# tempo-kit fit --recipe stage.yaml\n")
    again = load_recipe(saved, check_paths=False)
    assert format_recipe(again) == format_recipe(cfg)

    assert main(["fit", "--recipe", str(base_and_stage), "--print", "optim.lr.decoder=3e-5"]) == 0
    printed = OmegaConf.create(capsys.readouterr().out)
    assert printed.optim.lr.decoder == 3e-5 and printed.trainer.global_batch_size == 64


def test_cli_reports_config_errors_cleanly(base_and_stage, capsys):
    from tempo_kit.cli import main

    assert main(["fit", "--recipe", str(base_and_stage), "--print", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tempo-kit fit: error: recipe") and "did you mean 'lr'" in err


def test_docs_recipe_table_matches_the_yaml_files():
    """The recipes page's table is this function's output; on a change it prints the table to paste."""
    root = Path(__file__).resolve().parents[1]
    names = ["stage0", "stage1", "stage2", "stage3", "stage2_lora", "stage3_lora", "stage3_features", "demo", "router", "router_lora", "router_full"]
    assert {p.stem for p in (root / "recipes").glob("*.yaml")} == {*names, "base"}
    page = (root / "docs" / "training" / "recipes.md").read_text()
    documented = page.split("<!-- recipe-table:start -->\n")[1].split("\n<!-- recipe-table:end -->")[0]
    generated = recipe_table([root / "recipes" / f"{name}.yaml" for name in names])
    assert documented == generated, f"docs/training/recipes.md is stale; paste this table:\n{generated}"
    widest = max(line.count("|") - 1 for line in documented.splitlines() if line.startswith("|"))
    assert widest <= 6, f"a recipe table of {widest} columns is clipped on the rendered page"


#: The recipes page's tables: (title, [(column, the cell of one recipe)]). Three narrow tables,
#: not one of 14 columns, which the rendered page clipped (with file names broken mid-word).
RECIPE_TABLES: list[tuple[str, list[tuple[str, Callable[[Path, DictConfig], str]]]]] = [
    (
        "What each recipe trains",
        [
            ("starts from", lambda path, cfg: f"`{cfg.run.init_from}`" if cfg.run.init_from else "base checkpoints"),
            ("SVLM", lambda path, cfg: "w_Yes − w_No only" if _direction_only(cfg) else cfg.trainable.compressor),
            ("memory tokens", lambda path, cfg: cfg.trainable.memory_tokens),
            ("projector", lambda path, cfg: cfg.trainable.projector),
            ("LLM", lambda path, cfg: cfg.trainable.decoder),
        ],
    ),
    (
        "Learning rates and batch",
        [
            ("lr SVLM", lambda path, cfg: f"{float(cfg.optim.lr.compressor):.0e}" if _direction_only(cfg) else _lr_text(cfg, ["compressor"])),
            ("lr LLM, projector, memory", lambda path, cfg: _lr_text(cfg, ["decoder", "projector", "memory_tokens"])),
            ("global batch", lambda path, cfg: str(cfg.trainer.global_batch_size)),
            ("epochs", lambda path, cfg: str(cfg.trainer.max_epochs)),
        ],
    ),
    (
        "Frames, memory and context",
        [
            ("max frames", lambda path, cfg: str(cfg.data.get("max_frames", "—"))),
            ("window", lambda path, cfg: str(cfg.data.get("window", "—"))),
            ("k_max", lambda path, cfg: str(cfg.model.compressor.get("k_max", "—"))),
            ("context", lambda path, cfg: str(cfg.model.get("train_max_context", "—"))),
        ],
    ),
]  # fmt: skip


def _direction_only(cfg: DictConfig) -> bool:
    return cfg.trainable.compressor == "frozen" and bool(cfg.router.train_direction)


def recipe_table(paths: Sequence[str | Path]) -> str:
    """The recipes' key settings as three Markdown tables (the docs' recipes page embeds them)."""
    configs = [(Path(path), load_recipe(path, check_paths=False)) for path in paths]
    blocks = []
    for title, columns in RECIPE_TABLES:
        header = "| recipe | " + " | ".join(name for name, _ in columns) + " |"
        rows = [f"**{title}**", "", header, "|---" * (len(columns) + 1) + "|"]
        for path, cfg in configs:
            cells = [f"`{path.stem}`", *(str(cell(path, cfg)) for _, cell in columns)]
            rows.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks)


def _lr_text(cfg: DictConfig, parts: Sequence[str]) -> str:
    """The distinct learning rates of the trainable ``parts``, or a dash when all are frozen."""
    values = sorted({float(cfg.optim.lr[p]) for p in parts if cfg.trainable[p] != "frozen"})
    return " / ".join(f"{v:.0e}" for v in values) or "—"


def test_shipped_stage_recipes_carry_table_a():
    from pathlib import Path

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    table_a = {  # frames, global batch, context, SVLM lr (None: frozen), LLM/projector/memory lr
        "stage0": (1, 128, 8192, None, 1e-3),
        "stage1": (8, 256, 8192, 2e-6, 1e-5),
        "stage2": (128, 128, 8192, 2e-6, 1e-5),
        "stage3": (384, 64, 16384, None, 1e-5),
    }
    for stage, (frames, batch, context, svlm_lr, lr) in table_a.items():
        cfg = load_recipe(recipes / f"{stage}.yaml", check_paths=False)
        assert (cfg.data.max_frames, cfg.trainer.global_batch_size, cfg.model.train_max_context) == (
            frames,
            batch,
            context,
        )
        assert (cfg.data.window, cfg.model.compressor.k_max, cfg.trainer.max_epochs) == (4, 128, 1)
        assert (cfg.optim.weight_decay, cfg.optim.scheduler, cfg.optim.warmup_ratio) == (0.0, "cosine", 0.03)
        assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.strategy.name == "fsdp"
        assert (cfg.trainable.compressor == "full") == (svlm_lr is not None)
        if svlm_lr is not None:
            assert cfg.optim.lr.compressor == svlm_lr
        trained = [p for p in ("decoder", "projector", "memory_tokens") if cfg.trainable[p] == "full"]
        assert trained and all(cfg.optim.lr[p] == lr for p in trained)
        expected_init = None if stage == "stage0" else f"outputs/stage{int(stage[-1]) - 1}/final"
        assert cfg.run.init_from == expected_init


def test_cpu_threads_is_applied_and_checked():
    import torch

    from tempo_kit.errors import ConfigError
    from tempo_kit.training.commands import set_cpu_threads

    before = torch.get_num_threads()
    try:
        set_cpu_threads(1)
        assert torch.get_num_threads() == 1
        set_cpu_threads(None)  # keeps what is set
        assert torch.get_num_threads() == 1
        for bad in (0, -2, 1.5, True, "2"):
            with pytest.raises(ConfigError, match="trainer.cpu_threads must be a positive integer"):
                set_cpu_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_lightnings_trainer_logger_is_taken_as_trainer_loggers(tmp_path):
    from tempo_kit.errors import ConfigError
    from tempo_kit.recipes import load_recipe

    demo = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    assert list(load_recipe(demo, ["trainer.logger=[csv, jsonl]"], check_paths=False).trainer.loggers) == ["csv", "jsonl"]
    assert list(load_recipe(demo, ["trainer.logger=false"], check_paths=False).trainer.loggers) == []
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"base: {demo}\ntrainer:\n  logger: [wandb]\n")
    assert list(load_recipe(mine, check_paths=False).trainer.loggers) == ["wandb"]
    mine.write_text(f"base: {demo}\ntrainer:\n  logger: [wandb]\n  loggers: [csv]\n")
    with pytest.raises(ConfigError, match="trainer.logger .Lightning's name. and trainer.loggers are both set"):
        load_recipe(mine, check_paths=False)


def test_demo_trains_with_the_prompt_its_exported_model_scores_with():
    """The demo's short SVLM prompt is one setting: training (router.prompt) reads the exported one."""
    demo = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml", check_paths=False)
    assert demo.router.weight > 0  # router.prompt is the training prompt only with the router objective on
    assert demo.router.prompt == demo.model.compressor.eval_prompt
    assert demo.model.compressor.eval_prompt not in ("routing", "standard")  # the short literal prompt
    changed = load_recipe(
        Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml",
        ["model.compressor.eval_prompt=Relevant?"],
        check_paths=False,
    )
    assert changed.router.prompt == "Relevant?"  # one place to change it
