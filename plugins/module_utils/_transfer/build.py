# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Build a signed bundle tarball from a spec (low side).

Steps: validate the spec; load the signing keys (fail early on a wrong passphrase); resolve every
artifact (downloads through :mod:`fetch` into a digest-named cache, local files and directories,
models from an Ollama store through :mod:`_ollama`); leave out what a high-side inventory already
holds; stream every file into the tar, hashing it once on the way; add the SBOM, ``bundle.json``
and one signature per key; fsync, rename; write ``<name>.tar.sha256`` (and the chunk list) last.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import os
import re
import stat
import tarfile
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import hash_many
from ansible_collections.airgap.llm.plugins.module_utils._io import atomic_write
from ansible_collections.airgap.llm.plugins.module_utils._ollama.errors import OllamaError
from ansible_collections.airgap.llm.plugins.module_utils._ollama.names import ModelName
from ansible_collections.airgap.llm.plugins.module_utils._ollama.store import Store
from ansible_collections.airgap.llm.plugins.module_utils._transfer.extract import unsafe_name
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (
    FetchError,
    FetchOptions,
    fetch,
    fetch_bytes,
    parse_checksums,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sbom import SbomError, build_sbom
from ansible_collections.airgap.llm.plugins.module_utils._transfer.sign import (
    SignError,
    load_private_key,
    sign,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.spec import (
    MANIFEST,
    SBOM,
    SIG_DIR,
    BundleArtifact,
    BundleError,
    BundleSpec,
    PlannedFile,
    bundle_basename,
    dumps_manifest,
    format_time,
    load_inventory,
    make_manifest,
)
from ansible_collections.airgap.llm.plugins.module_utils._transfer.stream import (
    BLOCK,
    BackgroundHasher,
    ChunkedSink,
    StreamError,
    read_sums,
)

__all__ = [
    "BuildOptions",
    "Plan",
    "TarWriter",
    "build",
    "existing_versions",
    "outputs",
    "plan_spec",
    "read_outer",
    "regular_size",
    "walk_directory",
    "write_digest_files",
]

STORE_LOCK_TIMEOUT = 60.0


class BuildOptions:
    """The options of one ``bundle_build`` task."""

    def __init__(
        self,
        *,
        dest: str,
        base_dir: str,
        cache_dir: str,
        signing_keys: Sequence[Dict[str, Any]],
        fetch_options: FetchOptions,
        inventory: Optional[str] = None,
        chunk_size: Optional[int] = None,
        force: bool = False,
    ) -> None:
        self.dest = dest
        self.base_dir = base_dir
        self.cache_dir = cache_dir
        self.signing_keys = list(signing_keys)
        self.fetch_options = fetch_options
        self.inventory = inventory
        self.chunk_size = chunk_size
        self.force = force


def outputs(dest: str, basename: str) -> Dict[str, str]:
    tar = os.path.join(dest, basename + ".tar")
    return {"tar": tar, "sha256": tar + ".sha256", "chunks": tar + ".chunks.sha256"}


def existing_versions(dest: str, channel: str) -> List[int]:
    found = []
    pattern = re.compile(r"^airgap-llm-" + re.escape(channel) + r"-(\d+)\.tar\.sha256$")
    for path in glob.glob(os.path.join(glob.escape(dest), "airgap-llm-*.tar.sha256")):
        match = pattern.match(os.path.basename(path))
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def read_outer(path: str) -> str:
    """The digest a ``.sha256`` file of this collection lists for its tarball."""
    try:
        rows = read_sums(path)
    except StreamError as exc:
        raise BundleError(f"{exc}; build the bundle again (bundle_force=true)") from None
    if len(rows) != 1:
        raise BundleError(
            f"{path} lists {len(rows)} digests, not one; build the bundle again (bundle_force=true)"
        )
    return rows[0][0]


# ---------------------------------------------------------------------------------------------
# Resolving artifacts into planned files


def _resolve_path(base_dir: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def _pinned_digest(art: BundleArtifact, options: BuildOptions) -> str:
    """The sha256 the download must have: the pin, or upstream's checksum file (they must agree)."""
    listed = None
    if art.checksums_url:
        try:
            raw = fetch_bytes(art.checksums_url, options.fetch_options)
        except FetchError as exc:
            raise BundleError(f"artifact {art.name} {art.version}: {exc}") from None
        if art.checksums_sha256:
            actual = hashlib.sha256(raw).hexdigest()
            if actual != art.checksums_sha256:
                raise BundleError(
                    f"artifact {art.name} {art.version}: {art.checksums_url} has sha256 {actual}, "
                    f"pinned {art.checksums_sha256}; the checksum file changed upstream"
                )
        try:
            listed = parse_checksums(raw.decode("utf-8", "replace"), art.filename or "", art.checksums_url)
        except FetchError as exc:
            raise BundleError(f"artifact {art.name} {art.version}: {exc}") from None
    if art.sha256 and listed and art.sha256 != listed:
        raise BundleError(
            f"artifact {art.name} {art.version}: pinned sha256 {art.sha256} but {art.checksums_url} "
            f"lists {listed}; find out which is right before building"
        )
    digest = art.sha256 or listed
    if digest is None:
        raise BundleError(f"artifact {art.name} {art.version}: no sha256 to check the download against")
    return digest


def _download(art: BundleArtifact, options: BuildOptions) -> PlannedFile:
    url, filename = art.url or "", art.filename or ""
    digest = _pinned_digest(art, options)
    cache = os.path.join(options.cache_dir, "sha256")
    os.makedirs(cache, 0o755, exist_ok=True)
    cached = os.path.join(cache, digest)
    if not os.path.isfile(cached):
        try:
            fetch(url, cached, digest, options=options.fetch_options)
        except FetchError as exc:
            raise BundleError(f"artifact {art.name} {art.version}: {exc}") from None
    return PlannedFile(
        f"artifacts/{art.kind}/{art.name}/{art.version}/{filename}",
        cached,
        size=regular_size(cached, f"artifact {art.name} {art.version}"),
        sha256=digest,
        kind=art.kind,
        name=art.name,
        version=art.version,
        source=url,
        license=art.license,
    )


def _local(art: BundleArtifact, options: BuildOptions) -> List[PlannedFile]:
    where = f"artifact {art.name} {art.version}"
    root = _resolve_path(options.base_dir, art.path or "")
    prefix = f"artifacts/{art.kind}/{art.name}/{art.version}/"
    if os.path.isdir(root):
        if art.sha256:
            raise BundleError(f"{where}: sha256 pins a single file, but {root} is a directory")
        entries = walk_directory(root, where)
    else:
        entries = [(art.filename or os.path.basename(root), root, regular_size(root, where))]
    if art.kind == "deb":
        # The repository publishes each file of a deb artifact in an APT pool under its own name.
        for rel, src, _size in entries:
            if "/" in rel or not rel.endswith(".deb") or rel.startswith("."):
                raise BundleError(
                    f"{where}: kind deb holds Debian packages only, directly in its directory, and "
                    f"{src} is not one: move it out, or bundle it as kind file"
                )
    return [
        PlannedFile(
            prefix + rel,
            src,
            size=size,
            sha256=art.sha256,
            kind=art.kind,
            name=art.name,
            version=art.version,
            source="file://" + src,
            license=art.license,
        )
        for rel, src, size in entries
    ]


def _model(
    art: BundleArtifact, store_path: Optional[str], base_dir: str
) -> Tuple[List[PlannedFile], bytes, str]:
    """Files of one model: its blobs (src in the store) and its manifest (bytes, returned apart)."""
    where = f"model {art.model}"
    setting = "store on the artifact" if art.store else "ollama_store in the bundle spec"
    if not store_path:
        raise BundleError(
            f"{where}: no Ollama store given; set ollama_store in the bundle spec (or store on the artifact) "
            "to the directory holding manifests/ and blobs/ (OLLAMA_MODELS)"
        )
    try:
        name = ModelName.parse(art.model)
        store = Store(_resolve_path(base_dir, store_path))
        store.check_layout(setting=setting)
        manifest = store.read_manifest(name)
        if manifest is None:
            held = store.model_names()
    except OllamaError as exc:
        raise BundleError(f"{where}: {exc}") from None
    if manifest is None:
        raise BundleError(
            f"{where}: not in the store {store.given} ({setting}), which holds: {held}. Check the name "
            "(model, or name:version of the artifact), or pull the model on the low side first"
        )
    source = f"ollama://{name.fullname}"
    files = []
    for layer in manifest.blobs:
        path = store.blob_path(layer.digest)
        size = regular_size(path, where)
        if size != layer.size:
            raise BundleError(
                f"{where}: blob {layer.digest} is {size} bytes, the manifest says {layer.size}; "
                "the store is damaged: run airgap.llm.ollama_verify and pull the model again"
            )
        files.append(
            PlannedFile(
                "models/blobs/" + layer.blob_name,
                path,
                size=size,
                sha256=layer.hex,
                kind="model",
                name=art.name,
                version=art.version,
                source=source,
                license=art.license,
            )
        )
    return files, manifest.raw, "models/" + name.relpath


# ---------------------------------------------------------------------------------------------
# Tar writing


class TarWriter:
    """Writes bundle members as ustar/pax entries into a :class:`ChunkedSink`."""

    def __init__(self, sink: ChunkedSink, mtime: int) -> None:
        self.sink = sink
        self.mtime = mtime
        self.bytes_hashed = 0
        # Member digests run in their own thread, the tar stream digest in the sink's: the thread
        # that moves the bytes only reads and writes.
        self._content = BackgroundHasher()

    def close(self) -> None:
        self._content.close()

    def _header(self, path: str, size: int) -> None:
        info = tarfile.TarInfo(path)
        info.size = size
        info.mode = 0o644
        info.mtime = self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        self.sink.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        pad = (-size) % tarfile.BLOCKSIZE
        if pad:
            self.sink.write(b"\x00" * pad)

    def add_bytes(self, path: str, data: bytes) -> str:
        self._header(path, len(data))
        self.sink.write(data)
        self._pad(len(data))
        return hashlib.sha256(data).hexdigest()

    def add_file(
        self, path: str, src: str, size: int, expected: Optional[str], hashed_early: bool = False
    ) -> str:
        """Stream ``src`` (exactly ``size`` bytes) into the tar; return its sha256, checked if known.

        ``hashed_early``: ``expected`` is not a pin but the digest this build took earlier (to compare
        with an inventory); a difference means the file changed meanwhile.
        """
        try:
            handle = open(src, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise BundleError(f"cannot read {src}: {exc}") from None
        with handle:
            self._header(path, size)
            digest = hashlib.sha256()
            left = size
            while left:
                try:
                    data = handle.read(min(BLOCK, left))
                except OSError as exc:
                    raise BundleError(f"cannot read {src}: {exc}") from None
                if not data:
                    raise BundleError(f"{src} shrank while being bundled (expected {size} bytes)")
                self._content.feed(data, (digest,))
                self.sink.write(data)
                left -= len(data)
            if handle.read(1):
                raise BundleError(f"{src} grew while being bundled (expected {size} bytes)")
        self._pad(size)
        self.bytes_hashed += size
        self._content.flush()
        actual = digest.hexdigest()
        if expected is not None and actual != expected and hashed_early:
            raise BundleError(
                f"{src} (bundle path {path}) changed while the bundle was being built: sha256 {expected} "
                f"when it was compared with the inventory, {actual} now; build again once it is stable"
            )
        if expected is not None and actual != expected:
            raise BundleError(
                f"{src} (bundle path {path}): sha256 is {actual}, expected {expected}. The file is corrupt "
                "or not the pinned one; fetch it again (delete it from the cache) or fix the pin."
            )
        return actual

    def finish(self) -> None:
        self.sink.write(b"\x00" * (2 * tarfile.BLOCKSIZE))
        pad = (-self.sink.size) % tarfile.RECORDSIZE
        if pad:
            self.sink.write(b"\x00" * pad)


def regular_size(path: str, what: str) -> int:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BundleError(f"{what}: cannot read {path}: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BundleError(f"{what}: {path} is not a regular file")
    return st.st_size


def walk_directory(root: str, what: str) -> List[Tuple[str, str, int]]:
    """Every regular file under ``root`` as (relative path, absolute path, size); links refused."""
    found: List[Tuple[str, str, int]] = []

    def visit(directory: str, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise BundleError(f"{what}: cannot list {directory}: {exc}") from None
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_symlink():
                raise BundleError(f"{what}: {entry.path} is a symbolic link; copy the real file there")
            if entry.is_dir():
                visit(entry.path, rel + "/")
            elif entry.is_file():
                if unsafe_name(rel):
                    raise BundleError(f"{what}: {rel!r} is not a safe file name")
                found.append((rel, entry.path, entry.stat().st_size))
            else:
                raise BundleError(f"{what}: {entry.path} is not a regular file")

    visit(root, "")
    if not found:
        raise BundleError(f"{what}: directory {root} holds no files")
    return found


# ---------------------------------------------------------------------------------------------
# Build


class Plan:
    def __init__(self) -> None:
        self.files: List[PlannedFile] = []
        self.by_path: Dict[str, PlannedFile] = {}
        self.memory: Dict[str, bytes] = {}
        self.artifacts: List[Dict[str, Any]] = []

    def add(self, planned: PlannedFile, data: Optional[bytes] = None) -> None:
        known = self.by_path.get(planned.path)
        if known is not None:
            if planned.kind == "model" and known.sha256 == planned.sha256:
                return  # a blob shared by two models travels once
            raise BundleError(f"two artifacts want the bundle path {planned.path}")
        self.by_path[planned.path] = planned
        self.files.append(planned)
        if data is not None:
            self.memory[planned.path] = data


def plan_spec(spec: BundleSpec, options: BuildOptions) -> Plan:
    plan = Plan()
    for art in spec.artifacts:
        entry: Dict[str, Any] = {
            "name": art.name,
            "version": art.version,
            "kind": art.kind,
            "license": art.license,
        }
        if art.suites:
            entry["suites"] = art.suites
        if art.kind == "model":
            files, raw, manifest_path = _model(art, art.store or spec.ollama_store, options.base_dir)
            manifest_sha256 = hashlib.sha256(raw).hexdigest()
            manifest_file = PlannedFile(
                manifest_path,
                None,
                size=len(raw),
                sha256=manifest_sha256,
                kind="model",
                name=art.name,
                version=art.version,
                source=files[0].source if files else "ollama",
                license=art.license,
            )
            for planned in files:
                plan.add(planned)
            plan.add(manifest_file, raw)
            entry.update(
                source=manifest_file.source,
                model=art.model,
                manifest_digest="sha256:" + manifest_sha256,
                files=[manifest_path] + [f.path for f in files],
            )
        elif art.url:
            planned = _download(art, options)
            plan.add(planned)
            entry.update(source=planned.source, files=[planned.path])
        else:
            local = _local(art, options)
            for planned in local:
                plan.add(planned)
            entry.update(
                source="file://" + _resolve_path(options.base_dir, art.path or ""),
                files=[f.path for f in local],
            )
        plan.artifacts.append(entry)
    return plan


def _hash_candidates(plan: Plan, sizes: Set[int]) -> int:
    """Hash the local files without a pinned digest that the inventory could hold; returns bytes read.

    Only a file whose size some blob of the inventory has can be left out, so no other file is read
    here. The digest found becomes the file's expected digest: the write that ships it checks the
    same bytes again.
    """
    candidates = [f for f in plan.files if f.sha256 is None and f.src is not None and f.size in sizes]
    hashed = 0
    for planned, outcome in zip(candidates, hash_many([f.src or "" for f in candidates])):
        if outcome.error is not None or outcome.size != planned.size:
            why = outcome.error or f"it is now {outcome.size} bytes, not {planned.size}"
            raise BundleError(
                f"artifact {planned.name} {planned.version}: cannot hash {planned.src} ({why}); make it a "
                "readable regular file that does not change while the bundle is built"
            )
        planned.sha256 = outcome.hexdigest
        planned.hashed_early = True
        hashed += outcome.size
    return hashed


def _apply_inventory(plan: Plan, path: str) -> Tuple[Dict[str, Any], int]:
    """Mark every file the high side holds (digest and size) as omitted; the differential record.

    Files of every kind count: downloads and model blobs by their known digest, local files and the
    files of local directories (wheelhouses, .deb sets) by a digest taken here.
    """
    blobs, inventory_digest = load_inventory(path)
    hashed = _hash_candidates(plan, set(blobs.values()))
    omitted = 0
    omitted_bytes = 0
    for planned in plan.files:
        if planned.sha256 is not None and blobs.get(planned.sha256) == planned.size:
            planned.omitted = True
            omitted += 1
            omitted_bytes += planned.size
    differential = {
        "inventory_sha256": inventory_digest,
        "omitted_files": omitted,
        "omitted_bytes": omitted_bytes,
    }
    return differential, hashed


def describe(spec: BundleSpec) -> List[Dict[str, Any]]:
    return [{"name": a.name, "version": a.version, "kind": a.kind} for a in spec.artifacts]


def build(raw_spec: Any, options: BuildOptions, check_mode: bool = False) -> Dict[str, Any]:
    """Build (or, in check mode, describe) the bundle. Returns the module result fields."""
    now = datetime.datetime.now(datetime.timezone.utc)
    spec = BundleSpec(raw_spec, now)
    basename = bundle_basename(spec.channel, spec.version)
    paths = outputs(options.dest, basename)
    result: Dict[str, Any] = {
        "changed": False,
        "channel": spec.channel,
        "version": spec.version,
        "bundle": paths["tar"],
        "sha256_file": paths["sha256"],
        "artifacts": describe(spec),
    }
    if os.path.exists(paths["sha256"]) and not options.force:
        result.update(_describe_existing(paths))
        return result
    newer = [v for v in existing_versions(options.dest, spec.channel) if v > spec.version]
    if newer:
        raise BundleError(
            f"{options.dest} already holds bundle version {max(newer)} of channel {spec.channel}; "
            f"version {spec.version} would be refused as a rollback on the high side. Raise version."
        )
    if not options.signing_keys:
        raise BundleError("at least one signing key is needed")
    result["changed"] = True
    if check_mode:
        return result
    keys = []
    for index, key in enumerate(options.signing_keys):
        try:
            keys.append(load_private_key(key["path"], key.get("passphrase")))
        except SignError as exc:
            raise BundleError(f"signing_keys[{index}]: {exc}") from None
    os.makedirs(options.dest, 0o755, exist_ok=True)
    plan = plan_spec(spec, options)
    differential, hashed_early = _apply_inventory(plan, options.inventory) if options.inventory else (None, 0)
    _remove_outputs(paths)
    sink = ChunkedSink(paths["tar"], options.chunk_size)
    writer = TarWriter(sink, int(spec.created.timestamp()))
    try:
        for planned in plan.files:
            if planned.omitted:
                continue
            if planned.path in plan.memory:
                planned.sha256 = writer.add_bytes(planned.path, plan.memory[planned.path])
            else:
                planned.sha256 = writer.add_file(
                    planned.path, planned.src or "", planned.size, planned.sha256, planned.hashed_early
                )
        files_by_path = {f.path: f.as_dict() for f in plan.files}
        try:
            sbom = build_sbom(spec.channel, spec.version, spec.created, plan.artifacts, files_by_path)
        except SbomError as exc:
            raise BundleError(str(exc)) from None
        sbom_file = PlannedFile(
            SBOM,
            None,
            size=len(sbom),
            sha256=writer.add_bytes(SBOM, sbom),
            kind="sbom",
            name="sbom",
            version=str(spec.version),
            source="generated",
            license=None,
        )
        plan.files.append(sbom_file)
        artifacts = [
            *plan.artifacts,
            {
                "name": "sbom",
                "version": str(spec.version),
                "kind": "sbom",
                "license": None,
                "source": "generated",
                "files": [SBOM],
            },
        ]
        manifest = dumps_manifest(
            make_manifest(
                channel=spec.channel,
                version=spec.version,
                created=spec.created,
                expires=spec.expires,
                files=plan.files,
                artifacts=artifacts,
                differential=differential,
            )
        )
        writer.add_bytes(MANIFEST, manifest)
        key_ids = []
        for key in keys:
            kid, signature = sign(key, manifest)
            if kid in key_ids:
                raise BundleError(f"signing key {kid} is listed twice")
            key_ids.append(kid)
            writer.add_bytes(f"{SIG_DIR}{kid}.sig", signature)
        writer.finish()
        digest, parts = sink.commit()
    except (BundleError, StreamError, OSError) as exc:
        writer.close()
        sink.abort()
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"writing the bundle to {options.dest} failed: {exc}") from None
    except BaseException:
        writer.close()
        sink.abort()
        raise
    writer.close()
    write_digest_files(paths, digest, parts, options.chunk_size is not None)
    result.update(
        sha256=digest,
        size=sink.size,
        chunks=[{"path": p, "sha256": h, "size": s} for p, h, s in parts] if options.chunk_size else [],
        key_ids=key_ids,
        files=len(plan.files),
        omitted_files=differential["omitted_files"] if differential else 0,
        omitted_bytes=differential["omitted_bytes"] if differential else 0,
        bytes_hashed=writer.bytes_hashed + hashed_early,
        created=format_time(spec.created),
        expires=format_time(spec.expires),
    )
    return result


def write_digest_files(
    paths: Dict[str, str], digest: str, parts: Sequence[Tuple[str, str, int]], chunked: bool
) -> None:
    """After the tarball (or its chunks) is in place: the chunk list, then ``.sha256`` last."""
    if chunked:
        lines = "".join(f"{h}  {os.path.basename(p)}\n" for p, h, _s in parts)
        atomic_write(paths["chunks"], lines.encode("ascii"))
    atomic_write(paths["sha256"], f"{digest}  {os.path.basename(paths['tar'])}\n".encode("ascii"))


def _remove_outputs(paths: Dict[str, str]) -> None:
    """A forced rebuild: remove the previous tarball, its chunks and digest files first."""
    for path in [
        paths["sha256"],
        paths["chunks"],
        paths["tar"],
        *glob.glob(glob.escape(paths["tar"]) + ".part*"),
    ]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _describe_existing(paths: Dict[str, str]) -> Dict[str, Any]:
    info: Dict[str, Any] = {"sha256": read_outer(paths["sha256"]), "chunks": []}
    if os.path.exists(paths["chunks"]):
        try:
            rows = read_sums(paths["chunks"])
        except StreamError as exc:
            raise BundleError(f"{exc}; build the bundle again (bundle_force=true)") from None
        for digest, name in rows:
            path = os.path.join(os.path.dirname(paths["tar"]), name)
            info["chunks"].append({"path": path, "sha256": digest, "size": os.path.getsize(path)})
        info["size"] = sum(c["size"] for c in info["chunks"])
    else:
        info["size"] = os.path.getsize(paths["tar"])
    return info
