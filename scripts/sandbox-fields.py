#!/usr/bin/env python3
"""Prints fields of `switchyard sandbox ... --output json` (read on stdin), one per line.

Usage: switchyard sandbox status --dir D --output json | sandbox-fields.py servers.0.port proxy.user
"""
import json
import sys

topology = json.load(sys.stdin)
for path in sys.argv[1:]:
    value = topology
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    print(value)
