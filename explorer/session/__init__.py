"""A run in its own process (moved to :mod:`explorer.session.client`; split next)."""

from explorer.session.client import *  # noqa: F403
from explorer.session.client import __all__, _real_stdio, _without_main  # noqa: F401
