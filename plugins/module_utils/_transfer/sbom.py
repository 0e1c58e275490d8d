# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""CycloneDX SBOM of a bundle (low side only).

``cyclonedx-python-lib`` is imported inside :func:`build_sbom`, never at module import time, so
the high side (ingest, repository, audit) does not need it.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Sequence

from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError

__all__ = ["SbomError", "build_sbom"]

_LIBRARY = "cyclonedx-python-lib"


class SbomError(AirgapError):
    """The SBOM cannot be built."""


def _component_type(kind: str, types: Any) -> Any:
    return {
        "model": types.MACHINE_LEARNING_MODEL,
        "ollama": types.APPLICATION,
        "step": types.APPLICATION,
        "container_image": types.CONTAINER,
        "wheelhouse": types.LIBRARY,
        "deb": types.LIBRARY,
        "gpu_driver": types.DEVICE_DRIVER,
    }.get(kind, types.FILE)


def build_sbom(
    channel: str,
    version: int,
    created: Any,
    artifacts: Sequence[Dict[str, Any]],
    files: Dict[str, Dict[str, Any]],
) -> bytes:
    """CycloneDX 1.6 JSON: one component per artifact, with a sub-component per file and its SHA-256."""
    try:
        from cyclonedx.model import HashAlgorithm, HashType, Property  # noqa: PLC0415 - low side only
        from cyclonedx.model.bom import Bom  # noqa: PLC0415 - low side only
        from cyclonedx.model.component import Component, ComponentType  # noqa: PLC0415 - low side only
        from cyclonedx.model.license import LicenseExpression  # noqa: PLC0415 - low side only
        from cyclonedx.output.json import JsonV1Dot6  # noqa: PLC0415 - low side only
    except ImportError as exc:
        raise SbomError(
            f"building a bundle needs the Python library {_LIBRARY} on the low side "
            f"(pip install {_LIBRARY}): {exc}"
        ) from None

    bom = Bom()
    bom.serial_number = uuid.uuid5(uuid.NAMESPACE_URL, f"airgap.llm:bundle:{channel}:{version}")
    bom.metadata.timestamp = created
    root = Component(
        name=f"airgap-llm-bundle-{channel}",
        version=str(version),
        type=ComponentType.DATA,
        bom_ref="bundle",
    )
    bom.metadata.component = root
    top: List[Any] = []
    for art in artifacts:
        subs: List[Any] = []
        for path in art["files"]:
            entry = files[path]
            subs.append(
                Component(
                    name=path,
                    type=ComponentType.FILE,
                    bom_ref=f"file:{path}",
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=entry["sha256"])],
                    properties=[Property(name="airgap.llm:size", value=str(entry["size"]))],
                )
            )
        licenses = []
        if art.get("license"):
            licenses.append(LicenseExpression(art["license"]))
        hashes = []
        if len(art["files"]) == 1:
            hashes.append(HashType(alg=HashAlgorithm.SHA_256, content=files[art["files"][0]]["sha256"]))
        component = Component(
            name=art["name"],
            version=art["version"],
            type=_component_type(art["kind"], ComponentType),
            bom_ref="artifact:{}@{}".format(art["name"], art["version"]),
            licenses=licenses,
            hashes=hashes,
            properties=[
                Property(name="airgap.llm:kind", value=art["kind"]),
                Property(name="airgap.llm:source", value=art["source"]),
            ],
            components=subs,
        )
        bom.components.add(component)
        top.append(component)
    bom.register_dependency(root, top)
    return (JsonV1Dot6(bom).output_as_string(indent=1) + "\n").encode("utf-8")
