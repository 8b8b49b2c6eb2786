"""bulksim's fixtures, under their former module name: see :mod:`bulksim_pytest`.

The ``pytest11`` entry point names ``bulksim_pytest``, a module whose name cannot collide with
a project's own ``contracts`` package; this module stays for ``pytest_plugins`` lines that
name it.
"""

from __future__ import annotations

from bulksim_pytest import bulksim_app, bulksim_server, bulksim_settings

__all__ = ["bulksim_app", "bulksim_server", "bulksim_settings"]
