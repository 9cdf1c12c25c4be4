"""Loading paystate: at start-up, from a config file, started and stopped
while the node runs; its methods in `help`."""
from util import paystate_node, selfpay, status, wait_recorded

OWN = ["paystate-waitsendpay", "paystate-delpay", "paystate-listsendpays",
       "paystate-status"]


def test_plugin_option_loads_and_help_lists_methods(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path)
    commands = [c["command"] for c in l1.rpc.help()["help"]]
    for name in OWN:
        assert any(c.startswith(name) for c in commands), name
    st = status(l1)
    assert st["takeover"] is True
    assert st["parts"] == {"complete": 0, "failed": 0, "deleting": 0}
    h = selfpay(l1)
    assert l1.rpc.waitsendpay(h)["status"] == "complete"
    wait_recorded(l1, complete=1)
