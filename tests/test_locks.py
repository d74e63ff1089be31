"""Every lock installs into an empty venv exactly as pinned, and is complete (pip check is clean).

Why: a lock exists so that a new upstream release can never break the install. A lock that misses a
transitive package or an extra installs fine with a resolver and breaks only with --no-deps, which
is how scripts/setup installs it. The install here is offline: it reads the hash-checked wheelhouse
that scripts/setup filled, so the test never reaches the network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LOCKS = ["requirements.lock", "requirements-datasets3.lock"]
WHEELHOUSE = Path(os.environ.get("CONVOSIM_WHEELHOUSE", ROOT / ".cache" / "wheels"))
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def pins(lock: Path) -> dict[str, str]:
    """name -> version for every requirement the lock pins."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\\n]+)", lock.read_text(), flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def test_every_pin_carries_a_hash_and_the_lock_pins_its_own_installer() -> None:
    for name in LOCKS:
        text = (ROOT / name).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[-1])
        unhashed = [b.split()[0] for b in blocks if "==" in b.split("\n")[0] and "--hash=sha256:" not in b]
        assert unhashed == [], f"{name}: pins without a hash: {unhashed}"
        assert "pip" in pins(ROOT / name), f"{name} must pin the pip that scripts/lib/install.sh bootstraps"


@pytest.mark.parametrize("lock_name", LOCKS)
def test_lock_installs_alone_into_an_empty_venv_and_pip_check_is_clean(lock_name: str, tmp_path: Path) -> None:
    assert any(WHEELHOUSE.glob("*.whl")), f"no wheelhouse at {WHEELHOUSE}: run bash scripts/setup first"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = ["--python", str(venv / "bin" / "python")]
    # The lock's own uv installs (seconds instead of pip's minute); pip then lists and checks the result.
    uv = Path(sys.executable).parent / "uv"
    install = subprocess.run(
        [str(uv), "pip", "install", "--python", str(venv / "bin" / "python"), "--offline", "--no-index",
         "--find-links", str(WHEELHOUSE), "--no-deps", "--require-hashes", "-r", str(ROOT / lock_name)],
        capture_output=True,
        text=True,
        env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")},
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]

    listed = subprocess.run([*PIP, *target, "list", "--format=freeze"], capture_output=True, text=True, check=True)
    installed = pins_from_freeze(listed.stdout)
    assert installed == pins(ROOT / lock_name), "the venv must hold exactly what the lock pins"

    check = subprocess.run([*PIP, *target, "check"], capture_output=True, text=True)
    assert check.returncode == 0, f"{lock_name} is incomplete:\n{check.stdout}"

    # The check can fail: take away a package something in the lock needs, and pip check names it.
    victim = "idna" if lock_name == "requirements.lock" else "pyarrow"
    subprocess.run([*PIP, *target, "uninstall", "-y", victim], capture_output=True, check=True)
    broken = subprocess.run([*PIP, *target, "check"], capture_output=True, text=True)
    assert broken.returncode != 0 and victim in broken.stdout.lower(), broken.stdout


def pins_from_freeze(text: str) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, flags=re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}
