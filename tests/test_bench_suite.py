"""`scaling bench suite`: the smoke run writes every section's figures (where TensorFlow and the other packages an
accelerator image lacks cannot be imported); a failing section is skipped with its reason; bad options are one
error line."""

import json
import math
import re
import sys
from pathlib import Path

import jax
import pytest
from helpers import NOT_IN_ACCELERATOR_IMAGES, run_without

REPO = Path(__file__).resolve().parents[1]
FIGURES = {
    "matmul": {"achieved", "table_peak", "fraction_of_peak"},
    "step": {f"{model}.{name}" for model in ("resnet", "vit")
             for name in ("images_per_second", "steps_per_second", "mfu", "peak_memory", "compile_seconds")},
    "loop": {f"{model}.{name}" for model in ("resnet", "vit")
             for name in ("loop_steps_per_second", "bare_steps_per_second", "loop_over_bare")},
    "pack": {"sequential_seconds", "packed_seconds", "end_to_end_speedup", "throughput_speedup"},
    "feed": {"images_per_second", "over_resnet_step"},
    "fit": {"vectorised_seconds", "first_call_seconds", "scipy_seconds", "speedup", "optax_seconds", "best_loss_gap"},
}
TARGETS = {("step", "vit.mfu"): 0.30, ("step", "resnet.mfu"): 0.12, ("loop", "resnet.loop_over_bare"): 0.97,
           ("loop", "vit.loop_over_bare"): 0.97, ("pack", "throughput_speedup"): 3.0}


def test_smoke_suite_writes_every_figure_without_tensorflow(tmp_path):
    out = tmp_path / "suite.json"
    command = [sys.executable, "-m", "scaling.cli", "bench", "suite", "--smoke", "--out", str(out)]
    result = run_without(NOT_IN_ACCELERATOR_IMAGES, command, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "skipped:" not in result.stderr
    report = json.loads(out.read_text())
    assert (report["platform"], report["device_count"], report["smoke"]) == ("cpu", 8, True)
    assert report["versions"]["jax"] == jax.__version__ and report["device_kind"] == jax.devices()[0].device_kind
    for section, names in FIGURES.items():
        assert report["sections"][section]["status"] == "ok", report["sections"][section]
        figures = report["sections"][section]["figures"]
        assert set(figures) == names
        for name, figure in figures.items():
            if name.endswith("peak_memory"):  # CPU devices keep no memory statistics
                assert figure == {"value": None, "unit": "bytes", "status": "skipped",
                                  "reason": "the CPU backend reports no memory statistics"}
            else:
                assert figure["status"] == "ok" and math.isfinite(figure["value"]), (name, figure)
                assert figure["value"] >= 0 if name == "best_loss_gap" else figure["value"] > 0, (name, figure)
            if (section, name) in TARGETS:
                assert figure["target"] == TARGETS[section, name]
                assert figure["verdict"] == "not applicable on cpu" and "shortfall" not in figure
            else:
                assert "target" not in figure
        assert re.search(rf"^{section}\.\S+ +[\d.e+-]+ ", result.stdout, re.MULTILINE), section  # a row of the table
    step = report["sections"]["step"]
    assert step["settings"]["resnet"]["compute_dtype"] == "float32"  # train.compute_dtype=auto on a CPU
    figures = step["figures"]
    assert figures["resnet.images_per_second"]["value"] == pytest.approx(
        16 * figures["resnet.steps_per_second"]["value"])  # the smoke batch
    fit = report["sections"]["fit"]
    assert (fit["settings"]["starts"], fit["settings"]["scipy_starts"]) == (2**5, 2**5 // 4)  # every 4th start
    scipy_all, vectorised = (fit["figures"][name]["value"] for name in ("scipy_seconds", "vectorised_seconds"))
    assert scipy_all == pytest.approx(4 * fit["settings"]["scipy_seconds_measured"])  # scaled to every start
    assert fit["figures"]["speedup"]["value"] == pytest.approx(scipy_all / vectorised)
    assert figures["vit.mfu"]["value"] == pytest.approx(
        step["settings"]["vit"]["flops_per_example"] * figures["vit.images_per_second"]["value"]
        / step["settings"]["vit"]["mfu_peak_per_device"])  # one device: FLOPs/s over its peak
    assert f"wrote {out}" in result.stdout


def test_a_failing_section_is_skipped_with_its_reason(tmp_path, capsys):
    from scaling.cli import main

    out = tmp_path / "suite.json"
    assert main(["bench", "suite", "--sections", "step", "--batch", "3", "--out", str(out)]) == 0
    sections = json.loads(out.read_text())["sections"]
    assert sections["step"]["status"] == "skipped"
    assert "batch_size=3 does not divide over the 8 devices" in sections["step"]["reason"]
    assert {name: section["reason"] for name, section in sections.items() if name != "step"} == dict.fromkeys(
        ("matmul", "loop", "pack", "feed", "fit"), "not in --sections")
    assert re.search(r"^step +- +skipped: ConfigError: train.batch_size=3", capsys.readouterr().out, re.MULTILINE)


@pytest.mark.parametrize(("args", "message"), [
    (["--sections", "matmul,bogus"], "--sections 'matmul,bogus': unknown section(s) bogus; choose among "
                                     "matmul,step,loop,pack,feed,fit"),
    (["--batch", "0"], "--batch must be a positive number of images, got 0"),
])
def test_bad_options_are_one_error_line(tmp_path, capsys, args, message):
    from scaling.cli import main

    assert main(["bench", "suite", "--smoke", "--out", str(tmp_path / "suite.json"), *args]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "suite.json").exists()


def test_sigterm_stops_the_suite_after_the_running_section(tmp_path, monkeypatch, capsys):
    """SIGTERM during a section: that section finishes (a training one checkpoints and stops), no later one
    starts, the JSON says so, and the suite exits 3 (preempted), as a training run does."""
    import os
    import signal

    from scaling.cli import main
    from scaling.tools import bench_sections

    def terminated_matmul(shapes, shared):
        os.kill(os.getpid(), signal.SIGTERM)
        return {}, [bench_sections.Figure("achieved", 1.0, "FLOP/s")]

    monkeypatch.setitem(bench_sections.SECTIONS, "matmul", terminated_matmul)
    out = tmp_path / "suite.json"
    before = signal.getsignal(signal.SIGTERM)
    assert main(["bench", "suite", "--smoke", "--sections", "matmul,fit", "--out", str(out)]) == 3
    assert signal.getsignal(signal.SIGTERM) is before
    report = json.loads(out.read_text())
    assert report["sections"]["matmul"]["status"] == "ok"
    assert report["sections"]["fit"] == {"status": "skipped", "reason": "not run: the suite was stopped by SIGTERM"}
    assert "stopped by SIGTERM" in capsys.readouterr().err
