#!/usr/bin/env python3
"""Benchmark plugin: hooks `delpay` and `waitsendpay` (rpc_command, with
filters, as paystate does) and lets every call through at once. What a
node pays for relaying a command through a plugin's hook, and nothing
else: the floor under paystate's takeover."""
from pyln.client import Plugin

plugin = Plugin()


@plugin.hook("rpc_command", filters=["delpay", "waitsendpay"])
def on_rpc_command(plugin, rpc_command, **kwargs):
    return {"result": "continue"}


plugin.run()
