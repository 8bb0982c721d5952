"""`scaling bench loop` prints the training loop's and the bare step's steps/s and their ratio."""

import re


def test_bench_loop_prints_both_rates_and_their_ratio(digits_data_dir, capsys):
    from scaling.cli import main

    args = ["bench", "loop", "--config", "configs/resnet.py:width=4,depth=10", "--steps", "4", "--rounds", "1",
            f"--config.data.data_dir={digits_data_dir}", "--config.train.batch_size=32",
            "--config.train.log_every_steps=2", "--config.train.checkpoint_every_steps=2", "--config.mesh.data=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "batch 32, 1 device(s); 1 round(s) of 4 steps, log every 2, checkpoint every 2" in out
    loop = float(re.search(r"training loop .*?([\d.]+) steps/s", out).group(1))
    bare = float(re.search(r"bare compiled step .*?([\d.]+) steps/s", out).group(1))
    ratio = re.search(r"ratio loop/bare: ([\d.]+) \(of the medians; each round's: ([\d.]+)\)", out)
    assert loop > 0 and bare > 0
    rounding = 0.0005 + (0.005 / loop + 0.005 / bare) * loop / bare  # of the printed rates and ratio
    assert abs(float(ratio.group(1)) - loop / bare) <= rounding
    assert ratio.group(1) == ratio.group(2)  # one round: its ratio is the medians' ratio


def test_bench_loop_needs_a_window_after_the_first(digits_data_dir, capsys):
    from scaling.cli import main

    args = ["bench", "loop", "--steps", "30", f"--config.data.data_dir={digits_data_dir}"]
    assert main(args) == 2
    assert "train.steps >= 2 * train.log_every_steps = 40" in capsys.readouterr().err
