# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The attributes every module of the collection has: check mode, diff mode, platform, idempotence.

A module states only what differs: the details of its check mode, ``diff_mode`` support where it
returns a diff, and ``idempotent`` where it is not.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and predict whether the task would change anything, changing nothing.
    support: full
  diff_mode:
    description: Returns what changed (or would change, in check mode) when run with C(--diff).
    support: none
  platform:
    description: The systems the module runs on.
    support: full
    platforms: posix
  idempotent:
    description:
      - Run twice in a row with the same arguments outside check mode, the second run reports no change
        and changes nothing, unless what the module manages was changed in between.
    support: full
"""
