"""One rank of the compatibility matrix's FSDP2 check (``RANK``/``WORLD_SIZE``/``MASTER_*`` set by the test).

For every pair: build the model (same seed on each rank), shard each transformer block and then
the model with the kit's :func:`~tempo_kit.training.fsdp2.shard_model`, take one AdamW step on the
same batch on both ranks (so the averaged gradient is one process's), gather the weights on rank 0
and compare with a one-process copy that took the same step. Rank 0 writes what it found as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from compat_pairs import model_config, train_batch
from torch.distributed.device_mesh import init_device_mesh

from tempo_kit.model import TempoModel
from tempo_kit.training.fsdp2 import blocks, gather_full_state, shard_model
from tempo_kit.training.trainability import apply_trainability

FULL = {"compressor": "full", "memory_tokens": "full", "projector": "full", "decoder": "full"}


def built(paths: dict, compressor: str) -> TempoModel:
    torch.manual_seed(0)
    model = TempoModel.from_config(model_config({k: Path(v) for k, v in paths.items()}, compressor))
    apply_trainability(model, FULL)
    return model.train()


def one_step(model: TempoModel, batch) -> float:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(batch).loss
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def main(spec: Path, out: Path) -> None:
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    found = {}
    for name, compressor, paths in json.loads(spec.read_text()):
        model = built(paths, compressor)
        batch = train_batch(model.tokenizer)
        units = [n for n, _ in blocks(model.decoder)]
        classes = sorted({type(m).__name__ for _, m in blocks(model.decoder)})
        shard_model(model, mesh, "32-true")
        loss = one_step(model, batch)
        state = gather_full_state(model)
        if dist.get_rank() == 0:
            single = built(paths, compressor)
            single_loss = one_step(single, batch)
            difference = max((state[k] - v).abs().max().item() for k, v in single.state_dict().items() if k in state)
            found[name] = {
                "model_type": single.decoder.model.config.model_type,
                "decoder_blocks": classes,
                "decoder_units": len(units),
                "decoder_layers": single.decoder.model.config.num_hidden_layers,
                "loss_sharded": loss,
                "loss_single": single_loss,
                "max_weight_difference": difference,
            }
        dist.barrier()
    if dist.get_rank() == 0:
        out.write_text(json.dumps(found, indent=2))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
