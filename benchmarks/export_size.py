"""Size of each stage recipe's exported model at the real shapes, format 1 versus format 2.

Analytic, from models built on the meta device (no weights, no GPU): every tensor of the real-shape
Qwen3-VL-2B and Qwen3-4B (compatibility §5) × the bytes of the dtype it is stored in. Which
tensors a stage changes comes from its recipe's ``trainable:`` (and ``lora:`` targets, merged at
export); the dtypes from its ``model.*.dtype`` (the training dtype, float32 master weights in the
shipped recipes) and from the base checkpoints (bf16, as Qwen ships them). Stages chain through
``run.init_from``: a tensor trained in an earlier stage comes in that stage's stored dtype.

* format 1 stored, per component built from a base checkpoint, a copy of that base plus every
  tensor whose bytes differ from it (all of them once the model runs in float32), and the decoder
  through ``save_pretrained`` in the model's dtype;
* format 2 stores each tensor once: unchanged ones in the dtype they came in, trained ones in the
  training dtype.

    python benchmarks/export_size.py --out benchmarks/results/export_size.md
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch

#: The stage recipes, in the order their ``init_from`` chains them.
STAGES = ("stage0", "stage1", "stage2", "stage2_lora", "stage3", "stage3_lora", "router", "router_full")
#: Dtype of the downloaded Qwen3-VL-2B-Instruct and Qwen3-4B weights.
BASE_DTYPE = torch.bfloat16
GB = 1e9


def component_tensors() -> dict[str, dict[str, tuple[int, ...]]]:
    """``{component: {key: shape}}`` of the Tempo model at real shapes (tied weights once, as stored)."""
    from tempo_kit.tiny.real_shapes import build_real_shape_models

    models = build_real_shape_models("meta")
    svlm = {
        "svlm." + k.removeprefix("model."): tuple(v.shape)
        for k, v in models["svlm"].state_dict().items()
        if k.startswith("model.")  # the compressor drops the SVLM's LM head (tied to its embeddings)
    }
    d_svlm, d_llm = svlm["svlm.language_model.embed_tokens.weight"][1], models["llm"].config.hidden_size
    compressor = {**svlm, "memory_tokens": (128, d_svlm), "relevance_direction": (d_svlm,)}
    decoder = {"model." + k: tuple(v.shape) for k, v in models["llm"].state_dict().items() if k != "lm_head.weight"}
    projector = {"proj.weight": (d_llm, d_svlm), "proj.bias": (d_llm,)}
    return {"compressor": compressor, "projector": projector, "decoder": decoder}


def changed_keys(recipe, keys: dict[str, dict[str, tuple[int, ...]]]) -> set[str]:
    """``component.key`` of every tensor the recipe trains (LoRA: the merged target weights)."""
    changed = set()
    trainable, lora = recipe["trainable"], recipe.get("lora") or {}
    for part, mode in trainable.items():
        component = "compressor" if part == "memory_tokens" else part
        for key in keys[component]:
            if part == "memory_tokens":
                hit = key == "memory_tokens" and mode != "frozen"
            elif key in ("memory_tokens", "relevance_direction") and component == "compressor":
                continue
            elif mode == "full":
                hit = True
            elif mode == "lora":
                settings = lora[part]
                module = str(settings.get("module") or "")
                targets = "|".join(map(re.escape, settings["target_modules"]))
                inside = key.startswith(module + ".") if module else True
                hit = inside and re.search(rf"\.({targets})\.weight$", key) is not None
            else:
                hit = False
            if hit:
                changed.add(f"{component}.{key}")
    return changed


def nbytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    return torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()


def stage_sizes(recipe, keys, held: dict[str, torch.dtype]) -> tuple[dict, dict, dict]:
    """``(format 1 bytes, format 2 bytes, dtypes after the stage)`` per component."""
    training = {part: _dtype(recipe["model"][part].get("dtype", "auto")) for part in ("compressor", "decoder")}
    training["projector"] = torch.float32
    changed = changed_keys(recipe, keys)
    after = dict(held)
    for name in changed:
        after[name] = training[name.split(".", 1)[0]]
    before, now = {}, {}
    for component, tensors in keys.items():
        model_dtype = training[component]
        now[component] = sum(nbytes(s, after[f"{component}.{k}"]) for k, s in tensors.items())
        if component == "projector":
            before[component] = now[component]
        elif component == "decoder":  # save_pretrained in the model's dtype
            before[component] = sum(nbytes(s, model_dtype) for s in tensors.values())
        else:  # the base copy, plus every tensor whose bytes differ from it
            base = sum(nbytes(s, BASE_DTYPE) for k, s in tensors.items() if k.startswith("svlm."))
            differ = sum(
                nbytes(s, model_dtype)
                for k, s in tensors.items()
                if not k.startswith("svlm.") or model_dtype != BASE_DTYPE or f"{component}.{k}" in changed
            )
            before[component] = base + differ
    return before, now, after


def _dtype(name) -> torch.dtype:
    from tempo_kit.dtypes import resolve_dtype

    resolved = resolve_dtype(name)
    return BASE_DTYPE if resolved == "auto" else resolved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the markdown table here (else print it)")
    args = parser.parse_args()
    from omegaconf import OmegaConf

    from tempo_kit.recipes.load import load_recipe

    keys = component_tensors()
    base = {f"{c}.{k}": BASE_DTYPE for c, tensors in keys.items() for k in tensors}
    base.update({"compressor.memory_tokens": torch.float32, "compressor.relevance_direction": torch.float32})
    base.update({f"projector.{k}": torch.float32 for k in keys["projector"]})
    stored: dict[str, dict[str, torch.dtype]] = {}
    svlm_base = sum(nbytes(s, BASE_DTYPE) for k, s in keys["compressor"].items() if k.startswith("svlm."))
    llm_base = sum(nbytes(s, BASE_DTYPE) for s in keys["decoder"].values())
    rows = []
    for stage in STAGES:
        recipe = OmegaConf.to_container(load_recipe(f"recipes/{stage}.yaml", check_paths=False), resolve=True)
        source = recipe["run"].get("init_from")
        held = base if not source else stored[Path(source).parent.name]
        before, now, stored[stage] = stage_sizes(recipe, keys, held)
        modes = ", ".join(f"{p} {m}" for p, m in recipe["trainable"].items())
        rows.append((stage, source or "base checkpoints", modes, before, now))

    lines = [
        "# Export size per stage recipe, real shapes (Qwen3-VL-2B + Qwen3-4B)",
        "",
        "Analytic: tensors of the models built on the meta device × the bytes of the dtype each is",
        f"stored in. Base checkpoints in bf16: SVLM {svlm_base / GB:.2f} GB, LLM {llm_base / GB:.2f} GB;",
        "the recipes train with float32 master weights. Produced by:",
        "",
        "    python benchmarks/export_size.py --out benchmarks/results/export_size.md",
        "",
        "| stage | starts from | trainable | compressor GB (format 1 → 2) | decoder GB (1 → 2) | "
        "total GB (1 → 2) | compressor / bf16 SVLM (1 → 2) |",
        "|---|---|---|---|---|---|---|",
    ]
    for stage, source, modes, before, now in rows:
        total_before, total_now = sum(before.values()), sum(now.values())
        lines.append(
            f"| {stage} | {source} | {modes} | {before['compressor'] / GB:.2f} → {now['compressor'] / GB:.2f} | "
            f"{before['decoder'] / GB:.2f} → {now['decoder'] / GB:.2f} | {total_before / GB:.2f} → "
            f"{total_now / GB:.2f} | {before['compressor'] / svlm_base:.2f}× → {now['compressor'] / svlm_base:.2f}× |"
        )
    lines += [
        "",
        "Format 2 stores a frozen part once, in the dtype it came in (stage 0: both bases as",
        "downloaded, bf16); a trained part in the training dtype (float32 here), once. The projector",
        f"({sum(nbytes(s, torch.float32) for s in keys['projector'].values()) / 1e6:.1f} MB in float32) "
        "and the memory tokens are float32 in both formats.",
        "",
    ]
    text = "\n".join(lines)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
