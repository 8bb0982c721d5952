"""The training loop's batches built ahead of use on a background thread (`scaling.data.prefetch.Prefetcher`):
in order, identical to the batches built on demand, and failures raised where they are consumed."""

import time
import traceback

import jax
import ml_collections
import numpy as np
import pytest

from scaling.data.prefetch import Prefetcher
from scaling.data.train_batches import CachedBatches
from scaling.program import sharding
from scaling.train import step_inputs

BATCH, STEPS = 16, 6


def _streams(members: int, start: int) -> list:
    return [CachedBatches(*_data(), BATCH, seed).iterate(start) for seed in range(members)]


@pytest.mark.parametrize(("members", "start"), [(1, 0), (2, 7)])  # a run from scratch; a pack resumed at step 7
def test_prefetched_step_inputs_arrive_in_order_and_equal_the_unprefetched(members, start):
    mesh = sharding.make_mesh(ml_collections.ConfigDict({"data": 4, "fsdp": 2, "tensor": 1}))
    norms = {"mean": np.zeros((members, 3), np.float32), "std": np.ones((members, 3), np.float32)}
    rates = np.arange(members * 20, dtype=np.float32).reshape(members, 20)
    seeds = np.array([3, 5][:members], np.int32)
    direct = step_inputs(mesh, _streams(members, start), norms, rates, seeds, start)
    with Prefetcher(step_inputs(mesh, _streams(members, start), norms, rates, seeds, start)) as prefetched:
        for step in range(start, start + STEPS):
            if step == start + 2:
                time.sleep(0.2)  # the producer runs ahead and waits on the full queue
            expected, got = next(direct), next(prefetched)
            for member, seed in enumerate(seeds):  # an independent source: the member's batch of `step` itself
                images, labels = CachedBatches(*_data(), BATCH, member).local_batch(step)
                np.testing.assert_array_equal(np.asarray(got.images)[member], images)
                np.testing.assert_array_equal(np.asarray(got.labels)[member], labels)
                assert got.rng[member].tolist() == [seed, step]
                assert got.lr[member] == rates[member, step]
            for want, have in zip(jax.tree.leaves(expected), jax.tree.leaves(got), strict=True):
                np.testing.assert_array_equal(np.asarray(want), np.asarray(have))
            assert got.images.sharding == sharding.batch_sharded(mesh, packed=True)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8), np.arange(40, dtype=np.int32) % 10


def test_an_exception_in_the_producer_is_raised_by_the_consumer_with_its_traceback():
    def items():
        yield 0
        yield 1
        raise ValueError("bad record")

    prefetched = Prefetcher(items())
    assert [next(prefetched), next(prefetched)] == [0, 1]
    with pytest.raises(ValueError, match="bad record") as caught:
        next(prefetched)
    assert "in items" in "".join(traceback.format_exception(caught.value))  # the producer's frame
    with pytest.raises(ValueError):  # and again: the iterator stays failed
        next(prefetched)
    prefetched.close()


def test_close_stops_a_producer_waiting_on_a_full_queue_and_the_end_stops_iteration():
    built = []

    def endless():
        while True:
            built.append(len(built))
            yield built[-1]

    prefetched = Prefetcher(endless(), depth=2)
    assert next(prefetched) == 0
    time.sleep(0.1)
    assert len(built) == 4  # one taken, two queued, one built and waiting for room: never further ahead
    prefetched.close()
    assert not prefetched._thread.is_alive()
    assert list(Prefetcher(iter(range(3)))) == [0, 1, 2]
