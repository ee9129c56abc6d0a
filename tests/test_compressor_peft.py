"""A compressor's LoRA adapter, as a LoRA run writes it, loads with ``PeftModel.from_pretrained`` onto
the family's own Hugging Face model and acts there as in the kit: for families whose checkpoint
files keep an older key layout than the model's module paths (Qwen2.5-VL, LLaVA-OneVision), the
adapter must be keyed by the module paths."""

from __future__ import annotations

import pytest
import torch

from tempo_kit.registry import COMPRESSORS

#: the compressor LoRA of the stage recipes (stage2_lora.yaml), on the SVLM's language model
LORA = {"module": "svlm.language_model", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}  # fmt: skip
#: each family's HF model class and the name of its language model inside ``svlm``
HF_MODELS = {"qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "language_model"),
             "smolvlm": ("SmolVLMForConditionalGeneration", "text_model"),
             "llava_onevision": ("LlavaOnevisionForConditionalGeneration", "language_model")}  # fmt: skip


@pytest.mark.parametrize("family", sorted(HF_MODELS))
@torch.no_grad()
def test_a_compressor_adapter_loads_with_peft_onto_the_familys_model(family, tiny_svlm, tmp_path):
    import transformers
    from peft import PeftModel

    from tempo_kit.training.adapters import save_adapter
    from tempo_kit.training.trainability import inject_lora

    path, (hf_class, lm) = str(tiny_svlm(family)), HF_MODELS[family]
    lora = {**LORA, "module": f"svlm.{lm}"}
    compressor = COMPRESSORS.build({"name": family, "pretrained": path, "k_max": 4, "dtype": "float32"}).eval()
    inject_lora(compressor, lora, "lora.compressor")
    generator = torch.Generator().manual_seed(0)
    for name, parameter in compressor.named_parameters():
        if "lora_B" in name:  # as after training: B starts at zero, which would hide a lost adapter
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    save_adapter(compressor, lora, tmp_path / "compressor", "compressor")

    base = getattr(transformers, hf_class).from_pretrained(path, dtype=torch.float32).eval()
    peft = PeftModel.from_pretrained(base, str(tmp_path / "compressor")).eval()
    adapted = [n for n, m in peft.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A]
    assert adapted and all(f".{lm}." in n for n in adapted), adapted[:3]
    assert len(adapted) == sum(1 for n, m in compressor.named_modules() if hasattr(m, "lora_A") and "default" in m.lora_A)
    ids = torch.randint(0, 100, (1, 12), generator=generator)
    ours = compressor.svlm.get_submodule(lm)(input_ids=ids).last_hidden_state
    theirs = peft.base_model.model.model.get_submodule(lm)(input_ids=ids).last_hidden_state
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
    with peft.disable_adapter():  # and the adapter is what makes them agree
        plain = peft.base_model.model.model.get_submodule(lm)(input_ids=ids).last_hidden_state
    assert (plain - ours).abs().max() > 1e-3
