"""paystate-listsendpays paged as listsendpays pages, against the node's
own listing on the same node (pending parts left out), and its parameter
checks against the built-in's."""
from util import call, held_pair, selfpay, send_held, wait_ledger_is_node


def terminal(node, **params):
    return [p for p in node.rpc.call("listsendpays", params)["payments"]
            if p["status"] != "pending"]


def listed(node, params):
    return node.rpc.call("paystate-listsendpays", params)["payments"]


def test_pages_are_the_nodes_terminal_parts(node_factory, plugin_path):
    l1, l2 = held_pair(node_factory, plugin_path)
    for i in range(14):
        selfpay(l1, wrong_secret=(i % 3 == 0))
        if i % 5 == 0:
            send_held(l1, l2)  # stays pending: on no page
    wait_ledger_is_node(l1)
    for index in ("created", "updated"):
        whole = terminal(l1, index=index)
        assert len(whole) == 14
        assert listed(l1, {"index": index}) == whole
        walked, start = [], 0
        while True:
            page = listed(l1, {"index": index, "start": start, "limit": 4})
            assert page == terminal(l1, index=index, start=start)[:4]
            walked += page
            if len(page) < 4:
                break
            start = page[-1][index + "_index"] + 1
        assert walked == whole, index
        assert listed(l1, {"index": index, "status": "failed"}) == \
            terminal(l1, index=index, status="failed")


def test_paging_parameters_as_listsendpays(node_factory, plugin_path):
    l1 = node_factory.get_node(options={"plugin": plugin_path})
    h = selfpay(l1)
    for params in ({"start": 1}, {"limit": 1},
                   {"index": "created", "start": 1, "payment_hash": h},
                   {"index": "sideways"}, {"index": "created", "limit": -1},
                   {"index": "created", "limit": 2 ** 32},
                   {"index": "created", "start": "x"}):
        want = call(l1, "listsendpays", params)
        assert want[0] == "error", params
        assert call(l1, "paystate-listsendpays", params) == want, params
