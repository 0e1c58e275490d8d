# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's one base exception, and the one place where a module turns errors into a failed task.

Every domain error of the collection derives from :class:`AirgapError`; its text is a complete
sentence for an operator (what failed, expected and actual, what to do). :func:`fail_on_error`
wraps a module's work so that such an error, an operating-system error, or anything unexpected
ends in exactly one ``fail_json`` and never in a traceback on the operator's screen (an
unexpected error keeps its traceback in the ``exception`` field, which Ansible shows only with
``-vvv``).

Text that comes from outside (names and values read from transfer media, files on disk, documents
from a server) enters a message or an audit event only through :func:`quote` or :func:`describe`:
bounded in length and with every control, non-ASCII or invisible character escaped, so that no
input can make a message huge, break a log line or hide what it says.
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Any, Dict, Iterator, Optional, Tuple, Type

__all__ = ["OS_ERROR_ADVICE", "QUOTE_LIMIT", "AirgapError", "describe", "fail_on_error", "quote"]

OS_ERROR_ADVICE = "What to do: fix the cause (permissions, free space, file system) and run again."
QUOTE_LIMIT = 120
"""Characters of an untrusted value that a message shows; the rest is counted, not shown."""
_INT_DIGITS = 40


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """Untrusted text quoted for a message: escaped as ``ascii()`` does, ``limit`` characters at most.

    Bytes are read as UTF-8 (undecodable bytes escaped); anything that is not text is described
    by :func:`describe`. The result is at most about ``10 * limit`` characters long, whatever the
    input.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value[: limit * 4]).decode("utf-8", "surrogateescape")
    if not isinstance(value, str):
        return describe(value)
    shown = ascii(value[:limit])
    if len(value) > limit:
        shown += f" (and {len(value) - limit} more characters)"
    return shown


def describe(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A parsed (JSON-like) value as a message shows it: its text when short, else its kind and size."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**_INT_DIGITS else None
        return text if text is not None else f"an integer of more than {_INT_DIGITS} digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return quote(value, limit)
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    return f"a value of type {type(value).__name__}"


class AirgapError(Exception):
    """Base of every domain error of the collection; ``str()`` is a complete message for an operator."""


@contextlib.contextmanager
def fail_on_error(
    module: Any,
    what: str,
    domain_errors: Tuple[Type[BaseException], ...] = (AirgapError,),
    *,
    fields: Optional[Dict[str, Any]] = None,
    prefix_domain: bool = False,
    os_advice: str = OS_ERROR_ADVICE,
) -> Iterator[None]:
    """Run the body; fail the task once, with a clear message, on any exception.

    ``what`` names the operation and its subject ("export of /srv/store to /mnt/out"); it starts
    the message of operating-system and unexpected errors, and of domain errors when
    ``prefix_domain`` is set. ``fields`` are returned with the failure (``changed`` is false
    unless given).
    """
    extra = {"changed": False}
    extra.update(fields or {})
    try:
        yield
    except domain_errors as exc:
        module.fail_json(msg=f"{what}: {exc}" if prefix_domain else str(exc), **extra)
    except OSError as exc:
        module.fail_json(msg=f"{what}: {exc}. {os_advice}", **extra)
    # Never a bare traceback: anything unexpected still ends in one fail_json.
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(
            msg=f"{what}: internal error {type(exc).__name__}: {exc}. Please report it with -vvv output.",
            exception=traceback.format_exc(),
            **extra,
        )
