"""Headless Chromium and its ChromeDriver for the browser test (tests/test_console_browser.py): Debian's packages
`chromium` and `chromium-driver` (with `fonts-liberation`, so pages and screenshots have real fonts), installed with
apt-get when missing. `make test` runs this before the tests; the test's fixture calls `ensure()` too, so running
the test file alone installs them as well.

    python -m tools.chromium          # install them if missing (quiet, non-interactive), then print both paths

Idempotent: when `chromium` and `chromedriver` are on PATH (or TALLY_CHROMIUM and TALLY_CHROMEDRIVER name them),
nothing is installed. Only when they are missing and apt-get cannot be used (not Debian, or not root and no
password-less sudo) does it say why and exit 0: the browser test then skips with the same words. An apt-get that
is there but fails is an error (exit 1), so CI does not pass by skipping.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

PACKAGES = ("chromium", "chromium-driver", "fonts-liberation")
APT_TIMEOUT_SECONDS = 900  # the first install downloads about 100 MB


class Unavailable(Exception):
    """Chromium is missing and cannot be installed here; the message says what to do."""


@dataclass(frozen=True)
class Browser:
    chromium: str
    driver: str


def find() -> Browser | None:
    chromium = os.environ.get("TALLY_CHROMIUM") or shutil.which("chromium")
    driver = os.environ.get("TALLY_CHROMEDRIVER") or shutil.which("chromedriver")
    return Browser(chromium, driver) if chromium and driver else None


def _privileged() -> list[str]:
    """The prefix that runs apt-get as root: nothing when we are root, else password-less sudo."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return [sudo, "-n"]
    raise Unavailable("Chromium is not installed and installing it needs root: run "
                      f"`sudo apt-get install {' '.join(PACKAGES)}`")


def install() -> None:
    """`apt-get update` and `apt-get install` of the packages, quietly; raises RuntimeError with apt's output."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise Unavailable("Chromium is not installed and apt-get is not available here (not Debian): install "
                          "Chromium and its ChromeDriver, or name them in TALLY_CHROMIUM and TALLY_CHROMEDRIVER")
    prefix = _privileged()
    print(f"installing {' '.join(PACKAGES)} with apt-get (once)...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    options = ["-qq", "-o", "Dpkg::Use-Pty=0", "-o", "DPkg::Lock::Timeout=300"]  # wait for another apt, quietly
    for step in (["update"], ["install", "-y", "--no-install-recommends", *PACKAGES]):
        done = subprocess.run([*prefix, apt, *options, *step], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=APT_TIMEOUT_SECONDS)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get {step[0]} failed ({done.returncode}):\n{done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}")


def ensure() -> Browser:
    """Chromium and ChromeDriver, installed first if missing. Raises Unavailable when they cannot be."""
    found = find()
    if found:
        return found
    install()
    found = find()
    if found is None:
        raise RuntimeError(f"apt-get installed {' '.join(PACKAGES)} but chromium or chromedriver is not on PATH")
    return found


def main() -> int:
    try:
        browser = ensure()
    except Unavailable as why:
        print(f"tools.chromium: {why}; the browser test will be skipped", file=sys.stderr)
        return 0
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"tools.chromium: {error}", file=sys.stderr)
        return 1
    print(f"chromium: {browser.chromium}\nchromedriver: {browser.driver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
