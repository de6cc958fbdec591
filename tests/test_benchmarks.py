"""The benchmarks still run: one layer of bench_conv.py's sweep, as a smoke test.

Their figures are not tested (speed belongs in benchmarks/, not in timed tests); what is tested
is that the script runs, that its numpy and torch steps agree (bench_conv asserts it before it
times anything), and that it prints what the README's speed section quotes from it.
"""

from __future__ import annotations

import re
import subprocess
import sys

from course import ROOT


def test_bench_conv_sweeps_a_layer_and_prints_ratios_and_the_products_floor():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_conv.py"), "--sweep-only",
         "--sweep-rounds", "1", "--threads", "1", "--only", "1x1 s2"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "BLAS: " in out and "kernel" in out  # the BLAS kernel in use is printed
    number = r"\s+([\d.]+)"
    row = re.search(rf"1x1 s2 64->128 @16{number * 3}\s+.*?{number * 2}$", out, re.MULTILINE)
    assert row, out
    numpy_ms, torch_ms, ratio, products_ms, floor = map(float, row.groups())
    assert abs(ratio - numpy_ms / torch_ms) <= 0.01 + 0.01 * ratio
    assert abs(floor - products_ms / torch_ms) <= 0.01 + 0.01 * floor
    assert "conv: geometric mean of numpy/torch" in out
    assert "the matrix products alone / torch: geometric mean" in out
    assert "maxpool" not in out  # --only left the other layers out
