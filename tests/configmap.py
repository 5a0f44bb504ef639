"""A rules directory laid out the way a Kubernetes ConfigMap volume is, with its atomic swap.

dir/..2026_11_26_17_00_00.000000001/tgi.yaml   the real files, one timestamped dir per version
dir/..data -> ..2026_11_26_...                 swapped by renaming a new symlink over it
dir/tgi.yaml -> ..data/tgi.yaml                top-level symlinks, created once
"""

import itertools
import os
from pathlib import Path

_versions = itertools.count(1)


class ConfigMapDir:
    def __init__(self, root: Path, files: dict[str, str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.swap(files)
        for name in files:
            os.symlink(f"..data/{name}", self.root / name)

    def swap(self, files: dict[str, str]) -> None:
        version = self.root / f"..2026_11_26_17_00_00.{next(_versions):09d}"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text)
        tmp = self.root / "..data_tmp"
        os.symlink(version.name, tmp)
        os.rename(tmp, self.root / "..data")  # atomic, as the kubelet does
