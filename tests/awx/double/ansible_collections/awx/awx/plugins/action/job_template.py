# Copyright (c) 2026, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Recording stand-in for awx.awx.job_template (tests/awx/double/README.md)."""

from __future__ import annotations

from ansible_collections.airgap.llm.tests.awx.recorder import RecordingAction


class ActionModule(RecordingAction):
    MODULE = "job_template"
