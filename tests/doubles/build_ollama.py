# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pack the Ollama stand-in as upstream packs a Linux release.

Writes ``DEST/ollama-linux-amd64.tar.zst`` (``./bin/ollama`` and ``./lib/ollama/...``, owner and
group 0, as ``tar c -C dist . | zstd`` leaves them) and ``DEST/sha256sum.txt`` with the line
``<hex>  ./ollama-linux-amd64.tar.zst``, the form of upstream's release asset. The archive is
reproducible: the same version gives the same bytes.

    python3 tests/doubles/build_ollama.py --version 0.33.1 --dest /tmp/release [--broken]

``--broken`` builds a release whose ``ollama serve`` exits at once, to test that a failed upgrade
is rolled back.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "ollama")
ARCHIVE = "ollama-linux-amd64.tar.zst"
VERSION_RE = re.compile(r"\A[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?\Z")


def build(version: str, dest: str, broken: bool = False) -> str:
    """Build the archive and sha256sum.txt in ``dest``; return the archive's SHA-256."""
    if not VERSION_RE.match(version):
        raise ValueError(f"version {version!r} is not like 0.33.1")
    os.makedirs(dest, exist_ok=True)
    with tempfile.TemporaryDirectory() as stage:
        shutil.copytree(os.path.join(SOURCE, "lib"), os.path.join(stage, "lib"))
        shutil.copytree(os.path.join(SOURCE, "bin"), os.path.join(stage, "bin"))
        program = os.path.join(stage, "lib", "ollama", "ollama-stand-in")
        with open(program, encoding="utf-8") as handle:
            text = handle.read()
        text = text.replace("@VERSION@", version).replace("@BROKEN@", "yes" if broken else "no")
        with open(program, "w", encoding="utf-8") as handle:
            handle.write(text)
        binary = os.path.join(stage, "bin", "ollama")
        # A release is world-readable: directories 0755, files 0644, the binary 0755.
        for directory, _dirs, files in os.walk(stage):
            os.chmod(directory, 0o755)  # noqa: S103
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        os.chmod(binary, 0o755)  # noqa: S103
        tar = subprocess.run(
            [
                "tar",
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@1700000000",
                "-C",
                stage,
                "-c",
                ".",
            ],
            check=True,
            capture_output=True,
        ).stdout
    packed = subprocess.run(["zstd", "-q", "-19", "-c"], input=tar, check=True, capture_output=True).stdout
    path = os.path.join(dest, ARCHIVE)
    with open(path + ".tmp", "wb") as handle:
        handle.write(packed)
    os.replace(path + ".tmp", path)
    digest = hashlib.sha256(packed).hexdigest()
    with open(os.path.join(dest, "sha256sum.txt"), "w", encoding="utf-8") as handle:
        handle.write(f"{digest}  ./{ARCHIVE}\n")
    return digest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", required=True, help="release version, e.g. 0.33.1")
    parser.add_argument("--dest", required=True, help="output directory")
    parser.add_argument("--broken", action="store_true", help="build a release that cannot serve")
    args = parser.parse_args(argv)
    digest = build(args.version, args.dest, args.broken)
    sys.stdout.write(f"{digest}  {os.path.join(args.dest, ARCHIVE)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
