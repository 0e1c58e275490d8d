# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one of the collection's modules end to end, as a user would: `ansible localhost -m ...`."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, Tuple

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".build", "collections"))


def ansible_env() -> Dict[str, str]:
    """The environment for ansible commands: this checkout as airgap.llm, plain output."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
            "ANSIBLE_STDOUT_CALLBACK": "minimal",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
            "ANSIBLE_LOCALHOST_WARNING": "0",
        }
    )
    return env


def ansible(
    module: str, args: Dict[str, Any], *flags: str, timeout: int = 300
) -> Tuple[bool, Dict[str, Any]]:
    """Run ``airgap.llm.<module>`` on localhost; return (succeeded, result).

    Fails the calling test on a traceback: modules must report errors, never crash.
    """
    command = ["ansible", "localhost", "-m", f"airgap.llm.{module}", "-a", json.dumps(args), *flags]
    done = subprocess.run(
        command, capture_output=True, text=True, env=ansible_env(), timeout=timeout, check=False
    )
    output = done.stdout
    assert "Traceback" not in output + done.stderr, output + done.stderr
    head, _sep, body = output.partition(" => ")
    assert body, output + done.stderr
    result = json.loads(body[: body.rindex("}") + 1])
    return ("SUCCESS" in head or "CHANGED" in head), result
