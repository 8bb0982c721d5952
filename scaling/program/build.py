"""The model, optimizer state, train step and eval step of a config laid out on its mesh: what training,
the dry run and the step benchmark compile."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from scaling.data.pipeline import device_augment
from scaling.models import ModelSpec, partition_rules
from scaling.program import sharding
from scaling.program.evaluation import EvalStep, make_eval_step
from scaling.program.optim import make_optimizer
from scaling.program.steps import TrainState, make_loss_fn, make_train_step, plain, split_model
from scaling.runtime.devices import resolved_compute_dtype


@dataclasses.dataclass
class Program:
    """A config's graphs and jitted functions on `mesh`; states of a pack are stacked over a leading axis.

    States are plain pytrees of arrays (`TrainState`) everywhere but in checkpoints, which hold the NNX
    layout they always had (`saved`, `from_saved`, `saved_abstract`).
    """

    mesh: jax.sharding.Mesh
    compute_dtype: str  # train.compute_dtype resolved on the mesh's devices ("float32" or "bfloat16")
    train_graph: nnx.GraphDef
    eval_graph: nnx.GraphDef
    shardings: Any  # of one run's train state
    abstract_state: Any  # one run's train state as ShapeDtypeStructs carrying their shardings
    initial_state: Callable[[np.int32], TrainState]  # seed -> one run's state, created in place on the mesh
    # (packed state, StepInputs) -> (state, metrics); jitted, vmapped over the pack, donates the state
    train_step: Callable
    # (totals, params, rest, images, targets, mask, norm) -> totals plus the batch's sums; jitted, vmapped over the
    # pack (`Evaluator.compile` compiles it ahead of time)
    eval_step: EvalStep
    member_state: Callable  # (packed state, index) -> one run's state
    stack: Callable  # one run's states -> the packed state
    saved_def: jax.tree_util.PyTreeDef  # of one run's state as checkpoints hold it (nnx.State and nnx.Variable nodes)

    @property
    def packed_shardings(self) -> Any:
        """The shardings of the packed state."""
        return sharding.packed(self.shardings)

    @property
    def saved_abstract(self) -> Any:
        """`abstract_state` in the layout of checkpoints: what a restore fills in."""
        return self.saved(self.abstract_state)

    def saved(self, state: TrainState) -> Any:
        """One run's state in the layout of checkpoints (the same arrays, wrapped as NNX state)."""
        return self.saved_def.unflatten(jax.tree.leaves(state))

    def from_saved(self, state: Any) -> TrainState:
        """One run's state restored from a checkpoint, as a plain pytree."""
        return plain(state)


def build_program(config: ml_collections.ConfigDict, model: ModelSpec) -> Program:
    """Graphs, state layout (`sharding.state_shardings`) and jitted init/step/stack functions of `config`, computing
    in its train.compute_dtype as resolved on the mesh's devices (`resolved_compute_dtype`)."""
    mesh = sharding.make_mesh(config.mesh)
    compute_dtype = resolved_compute_dtype(config.train.compute_dtype, mesh.devices.flat[0])
    tx = make_optimizer(config.optim)
    train_graph, eval_graph, initial_state, saved_def = initializer(model, tx, compute_dtype)
    abstract = jax.eval_shape(initial_state, np.int32(0))
    shardings = sharding.state_shardings(mesh, abstract, config.mesh.fsdp_min_size, partition_rules(config.model))
    packed = sharding.packed(shardings)
    step_fn = make_train_step(make_loss_fn(train_graph), tx, model.num_classes, config.train.label_smoothing,
                              device_augment(config.data), config.train.microbatches)
    return Program(
        mesh=mesh, compute_dtype=compute_dtype, train_graph=train_graph, eval_graph=eval_graph, shardings=shardings,
        abstract_state=jax.tree.map(lambda leaf, where: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=where),
                                    abstract, shardings),
        initial_state=jax.jit(initial_state, out_shardings=shardings),
        train_step=jax.jit(jax.vmap(step_fn), donate_argnums=0, out_shardings=(packed, sharding.replicated(mesh))),
        eval_step=jax.jit(
            jax.vmap(make_eval_step(eval_graph, model.num_classes), in_axes=(0, 0, 0, None, None, None, 0)),
            out_shardings=sharding.replicated(mesh),
        ),
        member_state=jax.jit(
            lambda state, index: jax.tree.map(lambda leaf: jax.lax.dynamic_index_in_dim(leaf, index, keepdims=False),
                                              state),
            out_shardings=shardings,
        ),
        stack=jax.jit(lambda *states: jax.tree.map(lambda *leaves: jnp.stack(leaves), *states), out_shardings=packed),
        saved_def=saved_def,
    )


def initializer(
    model: ModelSpec, tx: optax.GradientTransformation, compute_dtype: str = "float32",
) -> tuple[nnx.GraphDef, nnx.GraphDef, Callable[[jax.Array], TrainState], jax.tree_util.PyTreeDef]:
    """Train and eval graph definitions (computing in `compute_dtype`), a pure seed -> initial train state (plain
    arrays), and the tree of that state as checkpoints hold it (NNX state).

    Parameters and optimizer state are float32 whatever the compute dtype. Jit the initializer: eager NNX
    initialisation compiles every initialiser on its own, and one jitted construction from an RBG key
    (cheaper to compile than threefry) cuts start-up several-fold.
    """

    def build(seed: jax.Array) -> nnx.Module:
        rngs = nnx.Rngs(jax.random.key(seed, impl="rbg"))
        return model.build(rngs, dtype=None if compute_dtype == "float32" else jnp.dtype(compute_dtype))

    def nnx_state(seed: jax.Array) -> Any:
        _, _, params, rest = split_model(build(seed))
        return {"params": params, "rest": rest, "opt_state": tx.init(params)}

    def initial_state(seed: jax.Array) -> TrainState:
        return plain(nnx_state(seed))

    train_graph, eval_graph, _, _ = split_model(nnx.eval_shape(lambda: build(jnp.int32(0))))
    return train_graph, eval_graph, initial_state, jax.tree.structure(jax.eval_shape(nnx_state, jnp.int32(0)))
