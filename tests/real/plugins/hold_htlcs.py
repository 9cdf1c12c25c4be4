#!/usr/bin/env python3
"""Test plugin: holds every incoming HTLC until told, so that the payer
keeps a pending part. `holdrelease` lets them through (the payment
completes), `holdfail` fails them (temporary_node_failure); `holdcount`
says how many are held."""
from pyln.client import Plugin

plugin = Plugin()
held = []


@plugin.async_hook("htlc_accepted")
def on_htlc_accepted(onion, htlc, request, plugin, **kwargs):
    held.append(request)


def resolve(result):
    n = len(held)
    while held:
        held.pop().set_result(result)
    return {"resolved": n}


@plugin.method("holdrelease")
def holdrelease(plugin):
    return resolve({"result": "continue"})


@plugin.method("holdfail")
def holdfail(plugin):
    return resolve({"result": "fail", "failure_message": "2002"})


@plugin.method("holdcount")
def holdcount(plugin):
    return {"held": len(held)}


plugin.run()
