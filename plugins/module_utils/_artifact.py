# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Place one artifact at a destination, checked against its SHA-256 (the airgap.llm.artifact module).

Deciding whether anything must change costs no read of a large file that has not changed: the
destination's :class:`_digest.StatKey` (device, inode, size, mtime and ctime in ns) is looked up
in a host-wide :class:`_digest.VerificationRecord`; only a destination the record does not know
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
import fcntl
import grp
import os
import pwd
import re
import stat
import tempfile
import urllib.parse
from typing import Any, Dict, Optional, Tuple

from ansible_collections.airgap.llm.plugins.module_utils._digest import (
    DigestError,
    SizeMismatchError,
    SourceReadError,
    StatKey,
    VerificationRecord,
    copy_and_hash,
    fsync_dir,
    is_sha256_hex,
    sha256_file,
)
from ansible_collections.airgap.llm.plugins.module_utils._fetch import FetchError, FetchOptions, fetch

DEFAULT_RECORD = "/var/lib/airgap-llm/artifact-record.json"
MODE_RE = re.compile(r"\A0?[0-7]{3,4}\Z")

__all__ = ["DEFAULT_RECORD", "ArtifactError", "ArtifactSpec", "partial_path", "place"]


class ArtifactError(Exception):
    """Bad options, a refused source or a failed transfer; ``str()`` tells the operator what to do."""


class ArtifactSpec:
    """The validated options of one task."""

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
        self.sha256 = normalize_sha256(sha256)
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
        self.uid = _uid(owner)
        self.gid = _gid(group)
        self.record_path = record
        self.resume = resume
        self.fetch_options = fetch_options or FetchOptions()

    @property
    def source(self) -> str:
        return self.url or self.src or ""


def normalize_sha256(value: Any) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:") :]
    text = text.lower()
    if not is_sha256_hex(text):
        raise ArtifactError(
            f"sha256 {value!r} is not a SHA-256 digest: give 64 hexadecimal digits (optionally 'sha256:' "
            "first), as listed in the repository index"
        )
    return text


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


def _uid(owner: Optional[str]) -> int:
    if owner is None or owner == "":
        return -1
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        if owner.isdigit():
            return int(owner)
        raise ArtifactError(f"owner {owner!r} is not a user on this host; create it first") from None


def _gid(group: Optional[str]) -> int:
    if group is None or group == "":
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ArtifactError(f"group {group!r} is not a group on this host; create it first") from None


def partial_path(dest: str, sha256: str) -> str:
    """The fixed name an interrupted download of ``sha256`` to ``dest`` is kept under."""
    directory, name = os.path.split(os.path.abspath(dest))
    return os.path.join(directory, f".{name}.{sha256[:16]}.part")


class _RecordLock:
    """An flock beside the verification record, so parallel tasks on one host do not lose entries."""

    def __init__(self, record_path: str, enabled: bool = True) -> None:
        self.path = record_path + ".lock"
        self.enabled = enabled
        self.fd: Optional[int] = None

    def __enter__(self) -> _RecordLock:
        if not self.enabled:
            return self
        directory = os.path.dirname(self.path)
        try:
            if directory:
                os.makedirs(directory, 0o755, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            self.fd = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _describe(path: str) -> Tuple[Optional[os.stat_result], Optional[str]]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise ArtifactError(f"cannot inspect {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return st, "a symbolic link"
    if stat.S_ISDIR(st.st_mode):
        return st, "a directory"
    if not stat.S_ISREG(st.st_mode):
        return st, "not a regular file"
    return st, None


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


def _inspect_dest(spec: ArtifactSpec, record: VerificationRecord) -> _Existing:
    st, problem = _describe(spec.dest)
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


def _attributes_differ(st: os.stat_result, spec: ArtifactSpec) -> bool:
    if stat.S_IMODE(st.st_mode) != spec.mode:
        return True
    if spec.uid not in (-1, st.st_uid):
        return True
    return spec.gid not in (-1, st.st_gid)


def _copy_local(spec: ArtifactSpec) -> Dict[str, Any]:
    src = spec.src or ""
    directory = os.path.dirname(spec.dest)
    try:
        src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        raise ArtifactError(f"cannot open src {spec.src}: {exc.strerror}; check the path") from None
    try:
        src_st = os.fstat(src_fd)
        if not stat.S_ISREG(src_st.st_mode):
            raise ArtifactError(f"src {spec.src} is not a regular file")
        if spec.size is not None and src_st.st_size != spec.size:
            raise ArtifactError(
                f"src {spec.src} is {src_st.st_size} bytes, expected {spec.size} (sha256 {spec.sha256}); "
                f"{spec.dest} was left as it was. The source is not the pinned artifact"
            )
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(spec.dest)}.", suffix=".tmp", dir=directory)
        try:
            try:
                actual, count = copy_and_hash(
                    src_fd, fd, expected_size=src_st.st_size, src_name=spec.src, dest_name=tmp
                )
                if actual != spec.sha256:
                    raise ArtifactError(
                        f"src {spec.src}: sha256 mismatch: expected {spec.sha256}, got {actual} "
                        f"({count} bytes); {spec.dest} was left as it was. The source is corrupt or not "
                        "the pinned artifact: replace it from the repository or check the pin"
                    )
                os.fchmod(fd, spec.mode)
                if spec.uid != -1 or spec.gid != -1:
                    os.fchown(fd, spec.uid, spec.gid)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, spec.dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except SizeMismatchError as exc:
        raise ArtifactError(f"src {spec.src} changed while it was copied ({exc}); run again") from None
    except DigestError as exc:
        raise ArtifactError(f"copying {spec.src} to {spec.dest} failed: {exc}") from None
    finally:
        os.close(src_fd)
    fsync_dir(directory)
    return {"sha256": actual, "size": count, "transferred": count, "resumed_from": 0}


def _download(spec: ArtifactSpec) -> Dict[str, Any]:
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
            uid=spec.uid,
            gid=spec.gid,
        )
    except FetchError as exc:
        raise ArtifactError(str(exc)) from None
    except DigestError as exc:
        raise ArtifactError(f"{url}: {exc}") from None


def _destination_directory_exists(spec: ArtifactSpec, check_mode: bool) -> bool:
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


def _predict_new(spec: ArtifactSpec) -> Dict[str, Any]:
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


def _after_new(spec: ArtifactSpec) -> str:
    uid = spec.uid if spec.uid != -1 else os.geteuid()
    gid = spec.gid if spec.gid != -1 else os.getegid()
    size_text = spec.size if spec.size is not None else "unknown"
    return _summary(spec.sha256, 0, spec.mode, uid, gid).replace("size: 0", f"size: {size_text}")


def place(spec: ArtifactSpec, check_mode: bool = False) -> Dict[str, Any]:
    """Make ``spec.dest`` hold the artifact; return the module result (without ``diff`` when unchanged).

    In check mode nothing is written, the verification record included. A dest whose directory does
    not exist yet is reported as a change in check mode (an earlier task creates the directory in the
    real run) and refused otherwise.
    """
    if not _destination_directory_exists(spec, check_mode):
        return _predict_new(spec)
    with _RecordLock(spec.record_path, enabled=not check_mode):
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
            if not _attributes_differ(existing.st, spec):
                _save(record, result, check_mode)
                return result
            result["changed"] = True
            after = _summary(
                spec.sha256,
                existing.st.st_size,
                spec.mode,
                existing.st.st_uid if spec.uid == -1 else spec.uid,
                existing.st.st_gid if spec.gid == -1 else spec.gid,
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


def _set_attributes(spec: ArtifactSpec, record: VerificationRecord, st: os.stat_result) -> None:
    old_key = StatKey.from_stat(st)
    try:
        if spec.uid != -1 or spec.gid != -1:
            os.chown(spec.dest, spec.uid, spec.gid, follow_symlinks=False)
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
