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
"""

from __future__ import annotations

import contextlib
import traceback
from typing import Any, Dict, Iterator, Optional, Tuple, Type

__all__ = ["OS_ERROR_ADVICE", "AirgapError", "fail_on_error"]

OS_ERROR_ADVICE = "What to do: fix the cause (permissions, free space, file system) and run again."


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
