#!/usr/bin/env python3
"""Test plugin: holds every incoming HTLC until told, so that the payer
keeps a pending part. `holdrelease` lets them through (the payment
completes), `holdfail` fails them (temporary_node_failure), or only the
`count` held first; `holdcount` says how many are held."""
from pyln.client import Plugin

plugin = Plugin()
held = []


@plugin.async_hook("htlc_accepted")
def on_htlc_accepted(onion, htlc, request, plugin, **kwargs):
    held.append(request)


def resolve(result, count=None):
    n = len(held) if count is None else min(count, len(held))
    for request in held[:n]:
        request.set_result(result)
    del held[:n]
    return {"resolved": n}


@plugin.method("holdrelease")
def holdrelease(plugin):
    return resolve({"result": "continue"})


@plugin.method("holdfail")
def holdfail(plugin, count=None):
    return resolve({"result": "fail", "failure_message": "2002"}, count)


@plugin.method("holdcount")
def holdcount(plugin):
    return {"held": len(held)}


plugin.run()
