"""The hf_causal_lm decoder: loading, loss, greedy generation of new tokens only, checkpointing, saving."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tempo_kit.decoders import HFCausalLM
from tempo_kit.errors import CheckpointError, ConfigError
from tempo_kit.registry import DECODERS


@pytest.fixture(scope="module")
def decoder(tiny_checkpoints):
    return DECODERS.build({"name": "hf_causal_lm", "pretrained": str(tiny_checkpoints["llm"])}).eval()


def test_builds_from_registry_with_hf_model_and_tokenizer(decoder):
    assert isinstance(decoder, HFCausalLM)
    assert decoder.hidden_size == 48
    assert decoder.tokenizer.convert_tokens_to_ids("<|im_end|>") == decoder.tokenizer.eos_token_id
    keys = {k for k, _ in decoder.named_parameters()}
    assert "model.model.embed_tokens.weight" in keys
    assert {c.__name__ for c in decoder.decoder_layer_classes} == {"Qwen3DecoderLayer"}


def test_embed_is_the_llm_input_embedding(decoder):
    ids = torch.tensor([[3, 5, 7], [11, 13, 17]])
    out = decoder.embed(ids)
    assert out.shape == (2, 3, 48)
    torch.testing.assert_close(out, decoder.model.get_input_embeddings().weight[ids])


def test_missing_or_hub_path_gives_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"hf download Qwen/Qwen3-4B"):
        HFCausalLM("Qwen/Qwen3-4B")
    with pytest.raises(CheckpointError, match="no config.json"):
        HFCausalLM(tmp_path)


def test_checkpoint_without_tokenizer_gives_checkpoint_error(tiny_checkpoints, tmp_path):
    import shutil

    broken = tmp_path / "llm"
    shutil.copytree(tiny_checkpoints["llm"], broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match=r"llm holds no tokenizer \(tokenizer.json"):
        HFCausalLM(broken)


def test_tokenizer_of_another_model_gives_checkpoint_error(tiny_checkpoints, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    other = tmp_path / "llm"
    shutil.copytree(tiny_checkpoints["llm"], other)
    tokenizer = AutoTokenizer.from_pretrained(str(other))
    tokenizer.add_tokens(["<extra_1>", "<extra_2>"])
    tokenizer.save_pretrained(str(other))
    with pytest.raises(CheckpointError, match="has 642 tokens but the model's embedding table has 640 rows"):
        HFCausalLM(other)


def test_unknown_dtype_is_a_config_error(tiny_checkpoints):
    with pytest.raises(ConfigError, match="unknown dtype 'float8'"):
        HFCausalLM(tiny_checkpoints["llm"], dtype="float8")


def test_dtype_option_casts_weights(tiny_checkpoints):
    dec = HFCausalLM(tiny_checkpoints["llm"], dtype="bfloat16", attn_implementation="eager")
    assert dec.model.dtype == torch.bfloat16
    assert dec.model.config._attn_implementation == "eager"


def test_forward_loss_is_shifted_cross_entropy_ignoring_minus_100(decoder):
    torch.manual_seed(0)
    ids = torch.randint(0, 600, (2, 9))
    labels = ids.clone()
    labels[:, :4] = -100
    mask = torch.ones_like(ids)
    out = decoder(decoder.embed(ids), mask, labels)
    expected = F.cross_entropy(
        out.logits[:, :-1].reshape(-1, out.logits.shape[-1]), labels[:, 1:].reshape(-1)
    )
    torch.testing.assert_close(out.loss, expected)


def _greedy_reference(decoder, ids: torch.Tensor, steps: int) -> list[int]:
    """Greedy decoding by repeated full forwards, no cache."""
    out: list[int] = []
    eos = set(decoder.model.generation_config.eos_token_id)
    for _ in range(steps):
        logits = decoder(decoder.embed(ids), torch.ones_like(ids)).logits[0, -1]
        token = int(logits.argmax())
        out.append(token)
        if token in eos:
            break
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


def test_generate_returns_only_new_tokens_greedy(decoder):
    ids = torch.tensor([[1, 20, 30, 40, 50, 60]])
    new = decoder.generate(decoder.embed(ids), torch.ones_like(ids), max_new_tokens=5)
    assert new.shape[0] == 1 and 1 <= new.shape[1] <= 5
    assert new[0].tolist() == _greedy_reference(decoder, ids, 5)[: new.shape[1]]


def test_left_padded_batch_generates_like_single_prompts(decoder):
    short, long = torch.tensor([[1, 21, 31]]), torch.tensor([[1, 22, 32, 42, 52, 62, 72]])
    singles = [
        decoder.generate(decoder.embed(x), torch.ones_like(x), max_new_tokens=4)[0] for x in (short, long)
    ]
    pad = long.shape[1] - short.shape[1]
    embeds = torch.cat(
        [torch.cat([torch.zeros(1, pad, 48), decoder.embed(short)], dim=1), decoder.embed(long)], dim=0
    )
    mask = torch.tensor([[0] * pad + [1] * short.shape[1], [1] * long.shape[1]])
    batch = decoder.generate(embeds, mask, max_new_tokens=4)
    for row, single in zip(batch, singles):
        assert row[: len(single)].tolist() == single.tolist()


def test_gradient_checkpointing_gives_same_gradients_with_frozen_llm(tiny_checkpoints):
    torch.manual_seed(0)
    ids = torch.randint(0, 600, (1, 8))
    visual_init = torch.randn(1, 3, 48)
    results = []
    for checkpointing in (False, True):
        dec = HFCausalLM(tiny_checkpoints["llm"], gradient_checkpointing=checkpointing).train()
        dec.requires_grad_(False)
        assert dec.is_gradient_checkpointing is checkpointing
        visual = visual_init.clone().requires_grad_(True)
        embeds = torch.cat([visual, dec.embed(ids)], dim=1)
        labels = torch.cat([torch.full((1, 3), -100), ids], dim=1)
        dec(embeds, torch.ones(1, 11, dtype=torch.long), labels).loss.backward()
        assert all(p.grad is None for p in dec.parameters())
        results.append(visual.grad)
    assert results[0].abs().sum() > 0
    torch.testing.assert_close(results[0], results[1])


def test_save_pretrained_round_trip(decoder, tmp_path):
    decoder.save_pretrained(tmp_path / "dec")
    again = HFCausalLM(tmp_path / "dec").eval()
    ids = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(
        decoder(decoder.embed(ids), torch.ones_like(ids)).logits,
        again(again.embed(ids), torch.ones_like(ids)).logits,
    )
    assert again.tokenizer.get_vocab() == decoder.tokenizer.get_vocab()
