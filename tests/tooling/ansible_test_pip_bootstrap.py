"""Offline pip bootstrap for ansible-test's sanity virtual environments.

ansible-test creates each sanity environment without pip and would download a bootstrap script
from the internet to put pip in. This stand-in, installed in ansible-test's cache under the
name it looks for (see the Makefile), installs pip from the wheel that ships with Python
(ensurepip) and then lets that pip install the exact versions ansible-test asked for, from the
package index the machine already uses.
"""

from __future__ import annotations

import ensurepip
import subprocess
import sys

BOOTSTRAP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    args = [arg for arg in sys.argv[1:] if arg not in BOOTSTRAP_ONLY_FLAGS]
    ensurepip.bootstrap(upgrade=True)
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
