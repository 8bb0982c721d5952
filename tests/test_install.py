"""What the install promises: accelerator extras over jax's own range, a range that admits the jax lines
tested, and a baseline (constraints/ci-baseline.txt) that the ranges admit and `make install` applied."""

import importlib.metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BASELINE = Path(__file__).resolve().parent.parent / "constraints" / "ci-baseline.txt"


def requirements() -> list[Requirement]:
    """The installed distribution's requirements, as declared in pyproject.toml."""
    return [Requirement(line) for line in importlib.metadata.requires("imagenet-scaling")]


def core_requirement(name: str) -> Requirement:
    """The one requirement on `name` outside any extra."""
    (found,) = [req for req in requirements() if req.name == name and req.marker is None]
    return found


def baseline_pins() -> dict[str, str]:
    """constraints/ci-baseline.txt as {name: version}, each line `name==version`."""
    pins = {}
    for line in BASELINE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


@pytest.mark.parametrize("extra", ["cuda12", "cuda13", "tpu"])
def test_accelerator_extra_is_jax_with_its_extra_over_the_core_range(extra):
    assert extra in importlib.metadata.metadata("imagenet-scaling").get_all("Provides-Extra")
    in_extra = [req for req in requirements() if req.marker is not None and req.marker.evaluate({"extra": extra})]
    assert [(req.name, req.extras) for req in in_extra] == [("jax", {extra})]
    assert in_extra[0].specifier == core_requirement("jax").specifier


def test_jax_range_admits_the_tested_lines_and_not_the_next():
    jax = core_requirement("jax").specifier
    for tested in ("0.10.0", "0.10.2", "0.11.2", "0.12.1"):
        assert jax.contains(tested), tested
    for untested in ("0.9.2", "0.13.0"):
        assert not jax.contains(untested), untested


def test_baseline_pins_what_the_ranges_admit_and_is_installed():
    pins = baseline_pins()
    assert pins == {
        "jax": "0.10.2", "jaxlib": "0.10.2", "flax": "0.12.8", "optax": "0.2.8", "orbax-checkpoint": "0.12.8",
    }
    assert core_requirement("jax").specifier.contains(pins["jaxlib"])  # jaxlib moves in step with jax
    for name in ("jax", "flax", "optax", "orbax-checkpoint"):
        assert core_requirement(name).specifier.contains(pins[name]), name
        # `make install` applied the constraints file: the tests run on the baseline
        assert importlib.metadata.version(name) == pins[name], name
