"""`check`: paystate's commands' parameters checked as the commands
check them, nothing run, and `check waitsendpay` / `check delpay` against
`check paystate-waitsendpay` / `check paystate-delpay` on the same node
(takeover off: the built-in names are lightningd's), with random
parameter sets, named and positional."""
import random

from test_params import DEL, WAIT, random_params
from util import call, paystate_node, selfpay, wait_recorded


def checked(node, command, params):
    """`check` of `command` with these params, named or positional, as
    lightningd's `check` takes them; the command's name in a result is
    left out, the rest compared."""
    if isinstance(params, dict):
        full = dict(params, command_to_check=command)
    else:
        full = [command] + list(params)
    kind, got = call(node, "check", full)
    if kind == "result":
        assert got == {"command_to_check": command}, got
        return kind, None
    return kind, got


def test_check_answers_as_the_builtins_check(node_factory, plugin_path):
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    hashes = [selfpay(l1), selfpay(l1, wrong_secret=True)]
    wait_recorded(l1, complete=1, failed=1)
    rng = random.Random(24)
    seen = {"result": 0, "error": 0}
    for builtin, ours, names in (("waitsendpay", "paystate-waitsendpay",
                                  WAIT),
                                 ("delpay", "paystate-delpay", DEL)):
        for _ in range(150):
            params = random_params(rng, names, hashes)
            want = checked(l1, builtin, params)
            assert checked(l1, ours, params) == want, (builtin, params)
            seen[want[0]] += 1
    # Both kinds of answer were compared, and nothing was run: the parts
    # are all still there.
    assert seen["result"] > 20 and seen["error"] > 20, seen
    assert len(l1.rpc.listsendpays()["payments"]) == 2
    assert not l1.daemon.is_in_log("Plugin does not support check")


def test_check_of_paystates_own_commands(node_factory, plugin_path):
    """Each command's check is its own parameter check: the error the
    command gives, or its name when the parameters are good."""
    l1 = paystate_node(node_factory, plugin_path, takeover=False)
    h = selfpay(l1)
    wait_recorded(l1, complete=1)
    for command, bad, good in (
            ("paystate-waitpay", {"payment_hash": h, "timeout": "x"},
             [h, 0]),
            ("paystate-waitanysendpay", ["y"], {"timeout": 0}),
            ("paystate-listsendpays", {"start": 5}, {"payment_hash": h}),
            ("paystate-status", None, [])):
        if bad is not None:
            want = call(l1, command, bad)
            assert want[0] == "error"
            assert checked(l1, command, bad) == want, command
        assert checked(l1, command, good) == ("result", None), command
