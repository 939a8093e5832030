"""Application settings: built-in defaults, then JSON files in order."""

import json
import os

from merge import merge

DEFAULTS = {
    "debug": False,
    "allowed_hosts": ["localhost"],
    "database": {
        "host": "localhost",
        "port": 5432,
        "name": "app",
        "user": "app",
        "password": "",
        "options": {"sslmode": "prefer", "connect_timeout": 10},
    },
    "cache": {"backend": "memory", "ttl": 300},
}


def load(paths):
    """Defaults, overridden by each existing file of `paths` in turn."""
    config = merge({}, DEFAULTS)
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            layer = json.load(f)
        if not isinstance(layer, dict):
            raise ValueError(f"{path}: top level must be an object")
        config = merge(config, layer)
    return config
