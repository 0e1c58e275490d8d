# Copyright (c) 2025, airgap.llm contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The TLS client options of everything that reads from the artifact repository over https.

Their argument spec is ``_transfer.fetch.tls_argument_spec()``; ``tls_options()`` turns them into
the downloader's settings.
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  ca_file:
    description:
      - PEM file of the certificate authorities that may sign the server's certificate (the internal CA).
        Without it the system trust store is used.
    type: path
  client_cert:
    description:
      - PEM client certificate, for repositories that require client-certificate authentication.
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert), when it is not in the same file.
    type: path
  timeout:
    description:
      - Seconds to wait for the connection and for each read from the server.
    type: float
    default: 60
notes:
  - Proxies from the environment are never used.
"""
