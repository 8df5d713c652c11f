"""Process settings: read and validated once, at process start."""

from __future__ import annotations

from config.settings import EdgeSettings, Settings, get_edge_settings, get_settings, reset_settings

__all__ = ["EdgeSettings", "Settings", "get_edge_settings", "get_settings", "reset_settings"]
