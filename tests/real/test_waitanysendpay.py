"""paystate-waitanysendpay on a real node: a stream of payments (some
failed) followed by updated_index across a plugin restart, every part seen
once and in order, each failure the built-in waitsendpay's."""
from util import call, paystate_node, selfpay


def follow(node, last, n):
    """The next n outcomes after `last`: (last index, parts seen)."""
    seen = []
    for _ in range(n):
        got = node.rpc.call("paystate-waitanysendpay", [last, 30])
        p = got["payment"]
        assert p["updated_index"] > last, "in updated_index order"
        last = p["updated_index"]
        assert p == node.rpc.listsendpays(payment_hash=p["payment_hash"])[
            "payments"][0]
        if p["status"] == "failed":
            assert ("error", got["failure"]) == call(
                node, "waitsendpay", [p["payment_hash"], 0, p.get("partid", 0),
                                      p["groupid"]])
        else:
            assert "failure" not in got
        seen.append(p["payment_hash"])
    return last, seen


def test_every_outcome_once_across_a_restart(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    hashes = [selfpay(l1, wrong_secret=(i % 3 == 0)) for i in range(6)]
    last, seen = follow(l1, 0, 3)
    l1.rpc.plugin_stop("paystate")
    hashes += [selfpay(l1, wrong_secret=(i % 3 == 0)) for i in range(4)]
    l1.rpc.plugin_start(plugin_path)
    last, more = follow(l1, last, 7)
    assert sorted(seen + more) == sorted(hashes), "every part once"
    err = call(l1, "paystate-waitanysendpay", [last, 0])
    assert err == ("error", {"code": 200,
                             "message": "Timed out while waiting"})
