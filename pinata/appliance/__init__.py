"""The appliance: the bounty ports, the web page and the self-talk, on trio.

`run(settings, preopened=...)` serves until SIGINT/SIGTERM; `serve` is the
same as an async function for callers that own the event loop (tests, the
launcher). Everything the appliance needs is imported here, at import time:
after start it opens no file and imports nothing.
"""

from pinata.appliance.server import run, run_selftalk, serve
from pinata.appliance.settings import ApplianceSettings, ConfigError, load_config, toy_settings
from pinata.appliance.state import ApplianceState

__all__ = [
    "ApplianceSettings",
    "ApplianceState",
    "ConfigError",
    "load_config",
    "run",
    "run_selftalk",
    "serve",
    "toy_settings",
]
