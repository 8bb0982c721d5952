"""Checkpoint integrity: digests of the saved arrays, checked on restore, whatever the layout."""

import errno
import os
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from jax.sharding import NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

from scaling.errors import CheckpointError
from scaling.workdir import checkpoint

MASK = 2**32 - 1


def _fmix32(h: int) -> int:
    h ^= h >> 16
    h = h * 0x85EBCA6B & MASK
    h ^= h >> 13
    h = h * 0xC2B2AE35 & MASK
    return h ^ (h >> 16)


def _expected_digest(values: np.ndarray) -> str:
    """The formula of `checkpoint.digests` written out in Python integers, on the host (words: numpy's view of
    the elements as unsigned integers of their width)."""
    words = [int(w) for w in values.reshape(-1).view(f"uint{8 * values.dtype.itemsize}")]
    a = sum(w * (2 * 2654435761 * i + 1) for i, w in enumerate(words)) & MASK
    b = sum(_fmix32(w ^ (2246822519 * i & MASK)) for i, w in enumerate(words)) & MASK
    return f"{a:08x}{b:08x}"


def _words(leaf: jax.Array) -> np.ndarray:
    """A leaf's values on the host; a typed key array's key data."""
    return np.asarray(jax.random.key_data(leaf) if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf)


def _state(mesh: jax.sharding.Mesh, offset: float) -> dict[str, jax.Array]:
    """A small train-state-like pytree sharded over `mesh`; `w` is big enough (256 KiB) for orbax to store its
    chunks outside the OCDBT index nodes, whose checksums would catch a flip."""
    rng = np.random.default_rng(0)
    values = {
        "w": rng.standard_normal((256, 256)).astype(np.float32) + offset,
        "b": jnp.asarray(rng.standard_normal((16, 8)) + offset, jnp.bfloat16),
        "count": np.full((8,), int(offset) + 1, np.uint8),
        "key": jax.random.key(int(offset), impl="rbg"),
    }
    specs = {"w": P("a", "b"), "b": P("a"), "count": P(), "key": P()}
    return {name: jax.device_put(value, NamedSharding(mesh, specs[name])) for name, value in values.items()}


def _flip_a_bit(step_folder: Path) -> None:
    """Flip the low bit of the middle byte of the biggest file of a saved step (there, array data: zstd-compressed
    chunks, stored raw when incompressible, and not checksummed)."""
    biggest = max((path for path in step_folder.rglob("*") if path.is_file()), key=lambda path: path.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0x01
    biggest.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_newest_step_sets_it_aside_and_resumes_from_the_previous(tmp_path, capsys):
    """A bit flipped in step 2's array data loads silently through orbax alone; with the digests, `restore`
    names the step, the array and the fix, and `restore_newest` moves step 2 aside and returns step 1 intact."""
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    states = {1: _state(mesh, 0.0), 2: _state(mesh, 1.0)}
    manager = checkpoint.checkpoint_manager(tmp_path, keep=3)
    for step, state in states.items():
        checkpoint.save(manager, step, state)
    manager.wait_until_finished()

    _flip_a_bit(tmp_path / "checkpoints" / "2")

    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, states[2])
    unchecked = manager.restore(2, args=ocp.args.StandardRestore(abstract))  # orbax alone: no error
    assert not np.array_equal(np.asarray(unchecked["w"]), np.asarray(states[2]["w"]))
    assert all(np.array_equal(_words(unchecked[name]), _words(states[2][name])) for name in ("b", "count", "key"))

    with pytest.raises(CheckpointError, match=r"checkpoint step 2 in .* is damaged: 1 of its 4 arrays .*\(w\).*"
                                              r"delete .*/2 to resume from the previous checkpoint"):
        checkpoint.restore(manager, 2, abstract)

    step, restored = checkpoint.restore_newest(manager, abstract)
    assert step == 1
    for name, leaf in states[1].items():
        assert restored[name].dtype == leaf.dtype, name  # the key comes back a typed key, not its raw data
        np.testing.assert_array_equal(_words(restored[name]), _words(leaf), err_msg=name)
    assert (tmp_path / "checkpoints" / "2.unreadable").is_dir() and not (tmp_path / "checkpoints" / "2").exists()
    assert manager.all_steps() == [1]
    warning = capsys.readouterr().err
    assert "warning: checkpoint step 2" in warning and "is damaged" in warning and "resuming from step 1" in warning
    manager.close()


def test_a_step_saved_without_digests_restores_unchecked_without_warning(tmp_path, capsys):
    """A step written before digests existed (no custom metadata) restores as before: even a flipped bit loads."""
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    state = _state(mesh, 0.0)
    manager = checkpoint.checkpoint_manager(tmp_path, keep=3)
    manager.save(1, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()
    _flip_a_bit(tmp_path / "checkpoints" / "1")

    step, restored = checkpoint.restore_newest(manager, jax.tree.map(ocp.utils.to_shape_dtype_struct, state))
    assert step == 1
    assert np.sum(np.asarray(restored["w"]) != np.asarray(state["w"])) >= 1
    assert capsys.readouterr().err == ""
    manager.close()


def test_digests_do_not_depend_on_the_layout():
    """The same values sharded over two meshes, replicated, or on one device: one digest, the formula's."""
    values = np.random.default_rng(1).standard_normal((16, 12)).astype(np.float32)
    expected = {"w": _expected_digest(values)}
    four_by_two, two_by_four = jax.make_mesh((4, 2), ("a", "b")), jax.make_mesh((2, 4), ("a", "b"))
    layouts = [NamedSharding(four_by_two, P("a", "b")), NamedSharding(two_by_four, P(None, "a")),
               NamedSharding(four_by_two, P()), SingleDeviceSharding(jax.devices()[3])]
    for layout in layouts:
        assert checkpoint.digests({"w": jax.device_put(values, layout)}) == expected, layout


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "int32", "uint8", "bool", "key"])
def test_one_changed_element_changes_the_digest_as_the_formula_says(dtype):
    """For every supported dtype, the digest of a sharded array and of the same array with one element changed
    (the smallest change: one ulp, +1, a negated bool, +1 in one word of a key) are the formula's, and differ."""
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    rng = np.random.default_rng(2)
    if dtype == "key":
        data = rng.integers(0, 2**32, (8, 6, 4), np.uint32)  # rbg keys: four words each
        edited = data.copy()
        edited[5, 3, 2] += 1
        arrays = [jax.random.wrap_key_data(words, impl="rbg") for words in (data, edited)]
    else:
        floating = dtype in ("float32", "bfloat16", "float16")
        values = (rng.standard_normal((8, 6)) if floating else rng.integers(0, 2 if dtype == "bool" else 255, (8, 6)))
        values = values.astype(jnp.dtype(dtype))
        edited = values.copy()
        if floating:
            edited[5, 3] = np.nextafter(values[5, 3], np.inf, dtype=values.dtype)
        else:
            edited[5, 3] = ~values[5, 3] if dtype == "bool" else values[5, 3] + 1
        arrays = [values, edited]
    original, modified = (jax.device_put(array, NamedSharding(mesh, P("a", "b"))) for array in arrays)
    found = [checkpoint.digests({"x": original})["x"], checkpoint.digests({"x": modified})["x"]]
    assert found == [_expected_digest(_words(original)), _expected_digest(_words(modified))]
    assert found[0] != found[1]


def test_background_saves_run_in_order_off_the_caller_and_a_failure_is_raised_once(monkeypatch):
    """`save_in_background` hands each save to one other thread, in the order asked over all managers; a failed
    save (a full disk) is raised in the caller, once: at the manager's next save, or when waiting for its saves."""
    caller, done = threading.current_thread(), []

    def save(manager, step, state):
        assert threading.current_thread() is not caller
        if step == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done.append((manager, step, state))

    monkeypatch.setattr(checkpoint, "save", save)
    a, b = object(), object()
    for manager, step in ((a, 1), (b, 1), (a, 2), (b, 2)):
        checkpoint.save_in_background(manager, step, f"state {step}")
    checkpoint.wait_for_saves(a)
    checkpoint.wait_for_saves(b)
    assert done == [(a, 1, "state 1"), (b, 1, "state 1"), (a, 2, "state 2"), (b, 2, "state 2")]

    checkpoint.save_in_background(a, 3, "state 3")  # fails in the background
    with pytest.raises(OSError) as failed:
        checkpoint.save_in_background(a, 4, "state 4")  # not saved: the caller stops on the error
    assert failed.value.errno == errno.ENOSPC
    checkpoint.wait_for_saves(a)  # raised once
    checkpoint.save_in_background(b, 3, "state 3")
    with pytest.raises(OSError, match="No space left on device"):
        checkpoint.wait_for_saves(b)
    assert len(done) == 4


def test_background_saves_hold_the_digests_of_the_states_saved(tmp_path):
    """Two steps saved in the background restore as saved, each with the formula's digests of its own arrays."""
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    rng = np.random.default_rng(3)
    values = {step: {"w": rng.standard_normal((8, 6)).astype(np.float32), "n": np.arange(4, dtype=np.int32) + step}
              for step in (1, 2)}
    layout = {"w": NamedSharding(mesh, P("a", "b")), "n": NamedSharding(mesh, P())}
    manager = checkpoint.checkpoint_manager(tmp_path, keep=3)
    for step, arrays in values.items():
        state = {name: jax.device_put(v, layout[name]) for name, v in arrays.items()}
        checkpoint.save_in_background(manager, step, state)
    checkpoint.wait_for_saves(manager)
    manager.wait_until_finished()
    assert manager.all_steps() == [1, 2]
    abstract = {name: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=layout[name]) for name, v in values[1].items()}
    for step, arrays in values.items():
        saved = ocp.metadata.get_step_metadata(tmp_path / "checkpoints" / str(step)).custom_metadata
        assert saved[checkpoint.DIGESTS] == {name: _expected_digest(v) for name, v in arrays.items()}
        restored = checkpoint.restore(manager, step, abstract)
        for name, v in arrays.items():
            np.testing.assert_array_equal(np.asarray(restored[name]), v)
    manager.close()
