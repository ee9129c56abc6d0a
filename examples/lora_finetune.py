"""Fine-tune Tempo's LLM with a LoRA adapter (stage 3 as LoRA), then load the merged export.

Run as-is, it builds tiny random checkpoints (or uses the base checkpoints given with --svlm and
--llm) and four synthetic needle videos in a temporary folder, and trains 4 steps on the CPU in seconds. With
real weights, point it at a stage-2 export and your data:

    python examples/lora_finetune.py --init-from outputs/stage2/final --train data/stage3/long.jsonl \\
        trainer.global_batch_size=64 trainer.devices=8 trainer.strategy.name=fsdp

Extra ``key=value`` arguments are recipe overrides, as on the ``tempo-kit fit`` command line.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tempo_kit.model import TempoModel
from tempo_kit.recipes import load_recipe, to_dict
from tempo_kit.training.commands import FINAL_DIR, run_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "stage3.yaml"


def tiny_setup(work: Path, svlm: str | None, llm: str | None) -> list[str]:
    """Overrides that swap the downloaded data for synthetic videos and, unless base checkpoints are
    given, the models for tiny random ones."""
    from tempo_kit.data.synthetic import make_needle_dataset
    from tempo_kit.tiny import make_tiny

    if not (svlm and llm):
        tiny = make_tiny(work / "tiny")
        svlm, llm = tiny["svlm"], tiny["llm"]
    train = make_needle_dataset(work / "needle", 4, duration=12.0, question_types=("mc",), seed=0)
    return [
        f"model.compressor.pretrained={svlm}",
        f"model.decoder.pretrained={llm}",
        "model.compressor.k_max=8",
        "run.init_from=null",  # stage 3 normally starts from stage 2's export
        f"data.train_files={train}",
        "data.max_frames=8",
        "data.max_long_edge=64",
        "data.preprocessing=qwen3_vl",  # tiny from-scratch models: no 131072-px upscale
        "data.num_workers=0",
        "trainer.strategy.name=auto",  # FSDP needs GPUs
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.precision=32-true",
        "trainer.global_batch_size=2",
        "trainer.max_steps=4",
        "trainer.max_epochs=-1",
        "trainer.enable_progress_bar=false",
        "optim.lr.decoder=1e-3",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-from", help="a stage-2 export (kit format); default: tiny checkpoints")
    parser.add_argument("--train", help="training annotation file (with --init-from)")
    parser.add_argument("--svlm", help="base Qwen3-VL checkpoint for the tiny run (default: tiny random)")
    parser.add_argument("--llm", help="base causal-LM checkpoint for the tiny run (default: tiny random)")
    parser.add_argument("--out", help="run folder (default: a temporary folder)")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, key=value")
    args = parser.parse_args()

    work = Path(args.out or tempfile.mkdtemp(prefix="tempo-lora-"))
    if args.init_from:
        overrides = [f"run.init_from={args.init_from}", f"data.train_files={args.train}"]
    else:
        overrides = tiny_setup(work, args.svlm, args.llm)
    overrides += [
        f"run.output_dir={work / 'run'}",
        "trainable.decoder=lora",  # the only change from stage 3: an adapter instead of full weights
        "lora.decoder.r=8",
        "lora.decoder.lora_alpha=16",
        *args.overrides,
    ]
    recipe = to_dict(load_recipe(RECIPE, overrides))
    print("trainable:", recipe["trainable"], "| LoRA:", recipe["lora"]["decoder"])
    run_recipe(recipe, "fit")  # prints trainable / total parameters per part

    final = work / "run" / FINAL_DIR
    model = TempoModel.from_pretrained(final)  # adapters merged: plain Hugging Face keys
    assert not any("lora_" in name for name, _ in model.named_parameters())
    print(f"merged model: {final}")
    print(f"adapters only: {work / 'run' / 'adapters'}")


if __name__ == "__main__":
    main()
