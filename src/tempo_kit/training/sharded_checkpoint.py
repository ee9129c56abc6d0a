"""``FSDP2Strategy``: Lightning's ``ModelParallelStrategy`` as pure FSDP2, with atomic sharded checkpoints.

Lightning's strategy hands ``configure_model()`` a device mesh and leaves the parallelism to the
module; this one fixes the mesh to data parallelism over every process (no tensor parallelism),
and :class:`~tempo_kit.training.module.TempoModule` shards on it with
:func:`~tempo_kit.training.fsdp2.shard_model`. Checkpoints are ``torch.distributed.checkpoint``
folders (each rank writes its shard; ``trainer.strategy.fsdp.state_dict_type: sharded``) written
beside their name, listed with every file's checksum in ``manifest.json`` (as a model folder is,
:mod:`tempo_kit.manifest`) and renamed into place once every rank has finished, so a crash
mid-save leaves the previous ``last.ckpt`` whole; ``state_dict_type: full`` gathers one file on rank 0.
``--resume`` reads the shards back into the sharded model (Lightning's own loader);
``validate`` / ``test --ckpt`` read them on any strategy (:mod:`tempo_kit.training.sharded_folder`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.strategies import ModelParallelStrategy

from tempo_kit.errors import ConfigError, check_choice, did_you_mean

#: ``trainer.strategy.fsdp.state_dict_type`` → whether each rank saves its own shard.
STATE_DICT_TYPES: dict[str, bool] = {"sharded": True, "full": False}
#: ``trainer.strategy.fsdp`` keys FSDP2 reads.
OPTIONS: tuple[str, ...] = ("sharding_strategy", "state_dict_type", "cpu_offload")


class FSDP2Strategy(ModelParallelStrategy):
    """FSDP2 over all processes; the module shards itself in ``configure_model()``.

    Args:
        precision: ``trainer.precision`` (FSDP2's mixed-precision policy; Lightning runs float32).
        options: ``trainer.strategy.fsdp`` (see :data:`OPTIONS`).
        process_group_backend: ``nccl`` / ``gloo``; ``None`` picks by device.
    """

    def __init__(self, precision: str, options: Mapping[str, Any], process_group_backend: str | None = None):
        from tempo_kit.training.fsdp2 import param_dtype, reshard_after_forward

        options = dict(options)
        for key in sorted(set(options) - set(OPTIONS)):
            raise ConfigError(
                f"trainer.strategy.fsdp.{key} is not an FSDP2 option{did_you_mean(key, OPTIONS)}; "
                f"the options are {', '.join(OPTIONS)}"
            )
        kind = check_choice(
            str(options.get("state_dict_type", "sharded")), STATE_DICT_TYPES, "trainer.strategy.fsdp.state_dict_type"
        )
        param_dtype(precision)
        reshard_after_forward(options)
        super().__init__(
            tensor_parallel_size=1,
            save_distributed_checkpoint=STATE_DICT_TYPES[kind],
            process_group_backend=process_group_backend,
        )
        self.precision_name = precision
        self.options = options

    def setup_environment(self) -> None:
        # one data-parallel dimension over every process (Lightning's "auto" would use the nodes)
        self._data_parallel_size = self.num_nodes * self.num_processes
        super().setup_environment()

    @property
    def data_parallel_mesh(self):
        """The 1-D mesh FSDP2 shards over."""
        return self.device_mesh["data_parallel"]

    def check_before_launch(self, module) -> None:
        """Refuse what FSDP2 cannot run before any process starts: one process, a part without
        transformer blocks, LoRA on a layer that is not linear. Builds ``module``'s model (the
        launching process is rank 0, which builds it anyway)."""
        from tempo_kit.training.fsdp2 import check_blocks, check_lora

        if self.num_nodes * self.num_processes < 2:
            raise ConfigError(
                f"trainer.strategy.name=fsdp shards the model over processes, but this run has "
                f"{self.num_nodes * self.num_processes}; set trainer.devices to 2 or more, or use "
                "trainer.strategy.name=auto for one device"
            )
        if module.model is None:
            module.set_up_model()
        check_blocks(module.model)
        check_lora(module.model)

    def shard(self, model):
        """Shard ``model`` (a built ``TempoModel``) over :attr:`data_parallel_mesh` with rank 0's weights.

        Rank 0's model holds the weights; the other ranks' were built on the meta device, so each
        of them allocates only its shards, which rank 0's broadcast fills.
        """
        from torch.distributed.fsdp import FSDPModule

        from tempo_kit.training.fsdp2 import load_into_shards, shard_model

        if isinstance(model, FSDPModule):
            return model
        full = dict(model.state_dict()) if self.is_global_zero else None  # references, not copies
        shard_model(model, self.data_parallel_mesh, self.precision_name, self.options)
        if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            model.to_empty(device=self.root_device)  # this rank's shards only; filled from rank 0 next
        load_into_shards(model, full)
        return model

    def save_checkpoint(self, checkpoint: dict[str, Any], filepath, storage_options: Any | None = None) -> None:
        if not self._save_distributed_checkpoint:
            return super().save_checkpoint(checkpoint, filepath, storage_options)
        from tempo_kit.atomic import atomic_folder

        target = Path(self.broadcast(str(filepath)))
        if self.is_global_zero and target.is_file():
            target.unlink()  # a single-file checkpoint of an earlier run under the same name
        writing = atomic_folder(target, replace=True) if self.is_global_zero else contextlib.nullcontext()
        with writing as partial:
            partial = Path(self.broadcast(str(partial)))  # rank 0's folder beside the target
            super().save_checkpoint(checkpoint, partial, storage_options)
            self.barrier("checkpoint written")
            if self.is_global_zero:  # every shard's checksum: a same-size shard of another run is refused
                from tempo_kit.manifest import write_manifest

                write_manifest(partial)
        self.barrier("checkpoint renamed")
