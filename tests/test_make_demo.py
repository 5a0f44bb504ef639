"""`make demo` on a fresh copy of the repository, as a new user runs it: it installs only the
package (no test or lint tools) and, within its default duration, tells the whole story."""

import re
import shutil
import subprocess

from tests.support import REPO, require_tool


def _fresh_copy(dest):
    """The files a clone would have (tracked, plus new files not ignored), without any venv."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def test_make_demo_on_a_fresh_copy_tells_the_whole_story(tmp_path):
    require_tool("make", "apt-get install make")
    clone = tmp_path / "clone"
    clone.mkdir()
    _fresh_copy(clone)
    assert not (clone / ".venv").exists()
    result = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "empty body" not in out
    story = [line for line in out.splitlines() if line.startswith(">>")]
    assert story[0].endswith("pod ready: queue_saturated: ok: sum(tgi_queue_size) = 0 <= 15"), story
    kinds = [re.sub(r"^>>\s+\d+s ", "", line).split(":")[0] for line in story]
    assert kinds == [
        "pod ready",
        "load rises",
        "rule queue_saturated",
        "pod unready",
        "load falls",
        "pod ready again",
    ], story
    pending, unready, back = story[2], story[3], story[5]
    assert re.search(r"pending for 0s of 3s: sum\(tgi_queue_size\) = \d+ > 15 \(recovers below 6\)$", pending)
    assert re.search(r"firing for \d+s: sum\(tgi_queue_size\) = \d+ > 15 \(recovers below 6\)$", unready)
    assert re.search(r"ok: sum\(tgi_queue_size\) = [0-5] <= 15$", back)
    assert re.search(r"^the pod left the Service at \d+s and came back at \d+s$", out, re.M)
    # only what the demo needs: the package, not pytest, ruff or matplotlib
    for module in ("pytest", "ruff", "matplotlib"):
        probe = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", f"import {module}"], capture_output=True)
        assert probe.returncode != 0, f"make demo installed {module}"
