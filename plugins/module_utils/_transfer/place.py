# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Place one artifact at a destination, checked against its SHA-256 (the airgap.llm.artifact module).

Deciding whether anything must change costs no read of a large file that has not changed: the
destination's :class:`_io.StatKey` (device, inode, size, mtime and ctime in ns) is looked up
in a host-wide :class:`_record.VerificationRecord`; only a destination the record does not know
is hashed, and the result is recorded. ``ctime`` cannot be set back, so any write, ``touch`` or
replacement of the file makes the record miss and the file is hashed again.

A transfer goes to a temporary name beside the destination (a fixed ``.<name>.<sha16>.part`` for
downloads, so that an interrupted one is resumed by the next run), is hashed while it streams,
gets its mode and ownership, is fsynced and renamed over the destination. A source whose bytes do
not hash to the pin is refused and the destination stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import urllib.parse
from typing import Any, Dict, Optional

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    SizeMismatchError,
    copy_and_hash,
    parse_sha256,
    sha256_file,
)
from ansible_collections.airgap.llm.plugins.module_utils._errors import AirgapError
from ansible_collections.airgap.llm.plugins.module_utils._io import (
    FileError,
    NotRegularError,
    Owner,
    SourceReadError,
    StatKey,
    classify,
    flock,
    open_regular,
    replacing,
)
from ansible_collections.airgap.llm.plugins.module_utils._record import VerificationRecord
from ansible_collections.airgap.llm.plugins.module_utils._transfer.fetch import (
    FetchError,
    FetchOptions,
    fetch,
)

__all__ = ["DEFAULT_RECORD", "ArtifactError", "Placement", "partial_path", "place"]

DEFAULT_RECORD = "/var/lib/airgap-llm/artifact-record.json"
MODE_RE = re.compile(r"\A0?[0-7]{3,4}\Z")


class ArtifactError(AirgapError):
    """Bad options, a refused source or a failed transfer; ``str()`` tells the operator what to do."""


class Placement:
    """The validated options of one ``airgap.llm.artifact`` task: what goes where, checked how."""

    def __init__(
        self,
        *,
        dest: str,
        sha256: str,
        url: Optional[str] = None,
        src: Optional[str] = None,
        size: Optional[int] = None,
        owner: Optional[str] = None,
        group: Optional[str] = None,
        mode: Any = "0644",
        record: str = DEFAULT_RECORD,
        resume: bool = True,
        fetch_options: Optional[FetchOptions] = None,
    ) -> None:
        if bool(url) == bool(src):
            raise ArtifactError("give exactly one of url (an https URL) or src (a file on the managed node)")
        self.sha256 = parse_sha256(sha256, hint="as the repository index lists it")
        if url:
            scheme = urllib.parse.urlsplit(url).scheme
            if scheme != "https":
                raise ArtifactError(
                    f"url {url} must be https: artifacts come from the internal repository over TLS"
                )
        if size is not None and size < 0:
            raise ArtifactError(f"size must be zero or more bytes, got {size}")
        self.dest = os.path.abspath(dest)
        if os.path.basename(dest.rstrip("/")) != os.path.basename(self.dest) or dest.endswith("/"):
            raise ArtifactError(f"dest {dest} must name a file, not a directory")
        self.url = url
        self.src = os.path.abspath(src) if src else None
        self.size = size
        self.mode = parse_mode(mode)
        self.owner = Owner.resolve(owner, group)
        self.record_path = record
        self.resume = resume
        self.fetch_options = fetch_options or FetchOptions()

    @property
    def source(self) -> str:
        return self.url or self.src or ""


def parse_mode(value: Any) -> int:
    if isinstance(value, bool):
        raise ArtifactError(f"mode {value!r} must be an octal string such as '0644'")
    if isinstance(value, int):
        if not 0 <= value <= 0o7777:
            raise ArtifactError(f"mode {value!r} is out of range; give an octal string such as '0644'")
        return value
    text = str(value)
    if not MODE_RE.match(text):
        raise ArtifactError(
            f"mode {value!r} must be an octal string such as '0644' (symbolic modes are not supported)"
        )
    return int(text, 8)


def partial_path(dest: str, sha256: str) -> str:
    """The fixed name an interrupted download of ``sha256`` to ``dest`` is kept under."""
    directory, name = os.path.split(os.path.abspath(dest))
    return os.path.join(directory, f".{name}.{sha256[:16]}.part")


@contextlib.contextmanager
def _record_lock(record_path: str, enabled: bool = True) -> Any:
    """An flock beside the verification record, so parallel tasks on one host do not lose entries.

    Best effort: where the lock cannot be taken (a read-only directory) the task goes on unlocked.
    """
    with contextlib.ExitStack() as stack:
        if enabled:
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(record_path) or ".", 0o755, exist_ok=True)
                stack.enter_context(flock(record_path + ".lock"))
        yield


class _Existing:
    """What the destination holds now, as far as the record or one hash can tell."""

    def __init__(
        self, st: Optional[os.stat_result], sha256: Optional[str], verified_by: Optional[str]
    ) -> None:
        self.st = st
        self.sha256 = sha256
        self.verified_by = verified_by

    def text(self) -> str:
        if self.st is None:
            return ""
        return _summary(
            self.sha256 or "unknown", self.st.st_size, self.st.st_mode, self.st.st_uid, self.st.st_gid
        )


def _summary(sha256: str, size: int, mode: int, uid: int, gid: int) -> str:
    return f"sha256: {sha256}\nsize: {size}\nmode: {stat.S_IMODE(mode):04o}\nowner: {uid}\ngroup: {gid}\n"


def _diff(dest: str, before: str, after: str) -> Dict[str, str]:
    return {"before": before, "after": after, "before_header": dest, "after_header": dest}


def _inspect_dest(spec: Placement, record: VerificationRecord) -> _Existing:
    try:
        st, problem = classify(spec.dest)
    except OSError as exc:
        raise ArtifactError(f"cannot inspect {spec.dest}: {exc.strerror}") from None
    if st is None:
        return _Existing(None, None, None)
    if problem is not None:
        raise ArtifactError(
            f"dest {spec.dest} is {problem}; the artifact must go to a regular file. Remove it or choose "
            "another dest"
        )
    key = StatKey.from_stat(st)
    known = record.lookup(key)
    if known is not None:
        return _Existing(st, known, "record")
    try:
        digest, _size = sha256_file(spec.dest)
    except SourceReadError as exc:
        raise ArtifactError(f"cannot hash the existing {spec.dest}: {exc.reason}") from None
    st_after = os.lstat(spec.dest)
    if StatKey.from_stat(st_after) == key:
        record.add(key, digest)
    return _Existing(st_after, digest, "hash")


def _copy_local(spec: Placement) -> Dict[str, Any]:
    src = spec.src or ""
    try:
        src_fd, src_st = open_regular(src)
    except NotRegularError:
        raise ArtifactError(f"src {spec.src} is not a regular file") from None
    except OSError as exc:
        raise ArtifactError(f"cannot open src {spec.src}: {exc.strerror}; check the path") from None
    try:
        if spec.size is not None and src_st.st_size != spec.size:
            raise ArtifactError(
                f"src {spec.src} is {src_st.st_size} bytes, expected {spec.size} (sha256 {spec.sha256}); "
                f"{spec.dest} was left as it was. The source is not the pinned artifact"
            )
        with replacing(spec.dest, mode=spec.mode, uid=spec.owner.uid, gid=spec.owner.gid) as (fd, tmp):
            actual, count = copy_and_hash(
                src_fd, fd, expected_size=src_st.st_size, src_name=src, dest_name=tmp
            )
            if actual != spec.sha256:
                raise ArtifactError(
                    f"src {spec.src}: sha256 mismatch: expected {spec.sha256}, got {actual} "
                    f"({count} bytes); {spec.dest} was left as it was. The source is corrupt or not "
                    "the pinned artifact: replace it from the repository or check the pin"
                )
    except SizeMismatchError as exc:
        raise ArtifactError(f"src {spec.src} changed while it was copied ({exc}); run again") from None
    except FileError as exc:
        raise ArtifactError(f"copying {spec.src} to {spec.dest} failed: {exc}") from None
    finally:
        os.close(src_fd)
    return {"sha256": actual, "size": count, "transferred": count, "resumed_from": 0}


def _download(spec: Placement) -> Dict[str, Any]:
    url = spec.url or ""
    partial = partial_path(spec.dest, spec.sha256) if spec.resume else None
    try:
        return fetch(
            url,
            spec.dest,
            spec.sha256,
            options=spec.fetch_options,
            size=spec.size,
            mode=spec.mode,
            partial=partial,
            uid=spec.owner.uid,
            gid=spec.owner.gid,
        )
    except FetchError as exc:
        raise ArtifactError(str(exc)) from None
    except FileError as exc:
        raise ArtifactError(f"{url}: {exc}") from None


def _destination_directory_exists(spec: Placement, check_mode: bool) -> bool:
    """Whether the directory of dest exists; an error when it cannot be there by the time dest is written.

    In check mode a directory that does not exist yet is the work of an earlier task that was only
    predicted (``ansible.builtin.file`` reports the change but creates nothing), so it is not an error
    as long as its nearest existing ancestor is a directory: the caller predicts the transfer.
    """
    directory = os.path.dirname(spec.dest)
    if os.path.isdir(directory):
        return True
    missing = f"the directory of dest, {directory}, does not exist; create it first (ansible.builtin.file)"
    if not check_mode:
        raise ArtifactError(missing)
    ancestor = directory
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ArtifactError(f"{missing}; {ancestor} is in its way and is not a directory")
    return False


def _predict_new(spec: Placement) -> Dict[str, Any]:
    """The check-mode result for a dest whose directory an earlier task has still to create."""
    return {
        "changed": True,
        "dest": spec.dest,
        "sha256": spec.sha256,
        "source": spec.source,
        "verified_by": None,
        "transferred": 0,
        "resumed_from": 0,
        "record_ignored": None,
        "size": spec.size,
        "diff": _diff(spec.dest, "", _after_new(spec)),
    }


def _after_new(spec: Placement) -> str:
    uid = spec.owner.uid if spec.owner.uid != -1 else os.geteuid()
    gid = spec.owner.gid if spec.owner.gid != -1 else os.getegid()
    size_text = spec.size if spec.size is not None else "unknown"
    return _summary(spec.sha256, 0, spec.mode, uid, gid).replace("size: 0", f"size: {size_text}")


def place(spec: Placement, check_mode: bool = False) -> Dict[str, Any]:
    """Make ``spec.dest`` hold the artifact; return the module result (without ``diff`` when unchanged).

    In check mode nothing is written, the verification record included. A dest whose directory does
    not exist yet is reported as a change in check mode (an earlier task creates the directory in the
    real run) and refused otherwise.
    """
    if not _destination_directory_exists(spec, check_mode):
        return _predict_new(spec)
    with _record_lock(spec.record_path, enabled=not check_mode):
        record = VerificationRecord.load(spec.record_path)
        existing = _inspect_dest(spec, record)
        result: Dict[str, Any] = {
            "changed": False,
            "dest": spec.dest,
            "sha256": spec.sha256,
            "source": spec.source,
            "verified_by": existing.verified_by,
            "transferred": 0,
            "resumed_from": 0,
            "record_ignored": record.ignored_reason,
        }
        before = existing.text()
        content_ok = existing.sha256 == spec.sha256
        if content_ok and existing.st is not None:
            if spec.size is not None and existing.st.st_size != spec.size:
                raise ArtifactError(
                    f"dest {spec.dest} hashes to the pinned sha256 {spec.sha256} but is "
                    f"{existing.st.st_size} bytes, not the pinned size {spec.size}: the pins disagree, "
                    "fix size"
                )
            result["size"] = existing.st.st_size
            if not spec.owner.wants(existing.st, spec.mode):
                _save(record, result, check_mode)
                return result
            result["changed"] = True
            after = _summary(
                spec.sha256,
                existing.st.st_size,
                spec.mode,
                existing.st.st_uid if spec.owner.uid == -1 else spec.owner.uid,
                existing.st.st_gid if spec.owner.gid == -1 else spec.owner.gid,
            )
            result["diff"] = _diff(spec.dest, before, after)
            if not check_mode:
                _set_attributes(spec, record, existing.st)
            _save(record, result, check_mode)
            return result

        result["changed"] = True
        result["size"] = spec.size
        result["diff"] = _diff(spec.dest, before, _after_new(spec))
        if check_mode:
            partial = partial_path(spec.dest, spec.sha256)
            with contextlib.suppress(OSError):
                if spec.url and spec.resume and os.path.isfile(partial):
                    result["resumed_from"] = os.lstat(partial).st_size
            return result

        outcome = _download(spec) if spec.url else _copy_local(spec)
        result.update(
            size=outcome["size"],
            transferred=outcome["transferred"],
            resumed_from=outcome["resumed_from"],
            verified_by="transfer",
        )
        if existing.st is not None:
            record.entries.pop(StatKey.from_stat(existing.st), None)
        with contextlib.suppress(OSError):
            record.add(StatKey.from_stat(os.lstat(spec.dest)), spec.sha256)
        _save(record, result, check_mode)
        return result


def _set_attributes(spec: Placement, record: VerificationRecord, st: os.stat_result) -> None:
    old_key = StatKey.from_stat(st)
    try:
        if spec.owner.uid != -1 or spec.owner.gid != -1:
            os.chown(spec.dest, spec.owner.uid, spec.owner.gid, follow_symlinks=False)
        os.chmod(spec.dest, spec.mode)
        new_st = os.lstat(spec.dest)
    except OSError as exc:
        raise ArtifactError(f"cannot set owner, group or mode of {spec.dest}: {exc.strerror}") from None
    # chmod/chown change only ctime: the content is the one just proved, so carry the proof over.
    digest = record.lookup(old_key)
    record.entries.pop(old_key, None)
    if digest is not None and new_st.st_ino == st.st_ino and new_st.st_mtime_ns == st.st_mtime_ns:
        record.add(StatKey.from_stat(new_st), digest)


def _save(record: VerificationRecord, result: Dict[str, Any], check_mode: bool) -> None:
    if check_mode or not record.dirty:
        return
    try:
        record.save()
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC):
            raise
        result.setdefault("warnings", []).append(
            f"cannot save the verification record {record.path} ({exc.strerror}); the next run hashes "
            "the destination again"
        )
