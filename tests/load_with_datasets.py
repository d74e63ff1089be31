"""Loads an hf export with whatever `datasets` runs this script and prints every row as JSON.

Run by tests/test_exports.py with the interpreter of .venv-datasets3 (datasets 3.x, which unifies
struct columns across rows), so the test can compare what that release reads with the run store.
Usage: python load_with_datasets.py EXPORT_DIR CACHE_DIR
"""

import json
import sys
from pathlib import Path

import datasets

export, cache = Path(sys.argv[1]), sys.argv[2]
files = {p.stem: str(p) for p in sorted((export / "data").glob("*.parquet"))}
loaded = datasets.load_dataset("parquet", data_files=files, cache_dir=cache)
print(json.dumps({"version": datasets.__version__}))
for split, rows in loaded.items():
    for row in rows:
        print(json.dumps({"split": split, "how": "load_dataset", **row}, default=str))
try:
    on_disk = datasets.load_from_disk(str(export / "dataset"))
except Exception as exc:  # reported, so the test can say what this release cannot read
    print(json.dumps({"load_from_disk_error": f"{type(exc).__name__}: {exc}"}))
else:
    for split, rows in on_disk.items():
        for row in rows:
            print(json.dumps({"split": split, "how": "load_from_disk", **row}, default=str))
