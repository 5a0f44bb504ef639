"""`pip install .` without extras, as the sidecar image and a new user get it: `simulate` still
writes its CSV and summary and says in one line how to get the plot. A real fresh venv, a real
pip install of this checkout (from the package index the machine is configured with)."""

import csv
import subprocess
import sys
import venv

from tests.support import REPO


def test_simulate_without_the_plot_extra(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    probe = subprocess.run([str(python), "-c", "import matplotlib"], capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0, "matplotlib must not come with a plain install"

    out = tmp_path / "out"
    result = subprocess.run(
        [str(env_dir / "bin" / "llm-healthcheck"), "simulate", "spillover", "--out", str(out), "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "llm-healthcheck simulate: no plot, matplotlib is not installed: "
        "pip install 'llm-healthcheck[sim]' for the PNG (or pass --no-plot)",
        f"wrote {out / 'spillover.csv'}",
    ]
    assert "readiness flips (all pods)" in result.stdout
    rows = list(csv.DictReader((out / "spillover.csv").open()))
    assert len(rows) == 3600
    assert not (out / "spillover.png").exists()
    assert sys.executable != str(python)
