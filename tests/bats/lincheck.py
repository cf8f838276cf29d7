#!/usr/bin/env python3
"""Linearizability checker for register histories (Wing & Gong's search with
Lowe's memoization of (linearized set, state) pairs).

Input: the lines of tests/lin/lin_client.c,
    THREAD KEY w|r VALUE INVOKE_NS RETURN_NS ok|fail
Registers are independent objects, so a history is linearizable iff the
sub-history of every key is (linearizability is local); each key is
checked on its own, starting from the value "init".

Outcomes:
  - a successful operation happened exactly once, between its invocation
    and its response;
  - a failed read tells nothing and is dropped;
  - a failed write may have taken effect at any time after its invocation,
    or never: it has no response (it stays concurrent with everything after
    it) and need not be linearized.  One whose value no read returned is
    dropped, since "never" is always a valid choice for it.

Usage: lincheck.py HISTORY       exit 0 when linearizable, 1 when not
                                 (naming the key and the stuck operations)
       lincheck.py --self-test   checks the checker on known histories
"""
import sys

INF = float("inf")


class Op:
    __slots__ = ("id", "kind", "value", "inv", "ret", "line")

    def __init__(self, id_, kind, value, inv, ret, line):
        self.id, self.kind, self.value = id_, kind, value
        self.inv, self.ret, self.line = inv, ret, line


class Node:
    """An event of the history: the call or the return of an operation."""
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op, self.is_call = op, is_call
        self.match = self.prev = self.next = None


def _build(ops):
    """The events in time order as a doubly linked list after a head node.
    At equal times calls come first, so touching intervals count as
    concurrent (the permissive reading of equal timestamps)."""
    events = []
    for op in ops:
        call = Node(op, True)
        events.append((op.inv, 0, call))
        if op.ret != INF:
            ret = Node(op, False)
            call.match = ret
            events.append((op.ret, 1, ret))
    events.sort(key=lambda e: (e[0], e[1]))
    head = Node(None, True)
    prev = head
    for _, _, node in events:
        prev.next, node.prev = node, prev
        prev = node
    return head


def _lift(node):
    node.prev.next = node.next
    if node.next is not None:
        node.next.prev = node.prev
    m = node.match
    if m is not None:
        m.prev.next = m.next
        if m.next is not None:
            m.next.prev = m.prev


def _unlift(node):
    m = node.match
    if m is not None:
        m.prev.next = m
        if m.next is not None:
            m.next.prev = m
    node.prev.next = node
    if node.next is not None:
        node.next.prev = node


def _step(state, op):
    """The register: a write always succeeds; a read must see the state."""
    if op.kind == "w":
        return True, op.value
    return op.value == state, state


def check_key(ops, init="init"):
    """None when ops (of one register) are linearizable from init, else the
    operations that could not be placed."""
    # Number the ops so a linearized set is a bit mask.
    for i, op in enumerate(ops):
        op.id = i
    head = _build(ops)
    returns_left = sum(1 for op in ops if op.ret != INF)
    state, linearized = init, 0
    seen = set()
    stack = []          # (call node, state before it) of the tentative order
    node = head.next
    deepest = []
    while returns_left > 0:
        if node is not None and node.is_call:
            ok, new_state = _step(state, node.op)
            if ok:
                new_lin = linearized | (1 << node.op.id)
                if (new_lin, new_state) not in seen:
                    seen.add((new_lin, new_state))
                    stack.append((node, state))
                    state, linearized = new_state, new_lin
                    if node.match is not None:
                        returns_left -= 1
                    _lift(node)
                    node = head.next
                    continue
            node = node.next
        else:
            # A response whose operation is not placed yet (or the end of
            # the list): undo the last choice and try the next candidate.
            if len(stack) > len(deepest):
                deepest = [n.op for n, _ in stack]
            if not stack:
                # nothing left to try: report the longest placeable prefix
                return deepest or [head.next.op]
            top, state = stack.pop()
            linearized &= ~(1 << top.op.id)
            if top.match is not None:
                returns_left += 1
            _unlift(top)
            node = top.next
    return None


def parse(lines):
    """{key: [Op]} from history lines, after dropping what tells nothing."""
    raw = {}
    for n, line in enumerate(lines, 1):
        f = line.split()
        if not f:
            continue
        if len(f) != 7 or f[2] not in ("w", "r") or f[6] not in ("ok", "fail"):
            raise ValueError("line %d: expected THREAD KEY w|r VALUE INVOKE RETURN ok|fail: %r"
                             % (n, line))
        inv, ret = int(f[4]), int(f[5])
        if ret < inv:
            raise ValueError("line %d: response before invocation" % n)
        raw.setdefault(f[1], []).append((f[2], f[3], inv, ret, f[6] == "ok", n))
    history = {}
    for key, recs in raw.items():
        read_values = {v for kind, v, _, _, ok, _ in recs if kind == "r" and ok}
        ops = []
        for kind, value, inv, ret, ok, n in recs:
            if ok:
                ops.append(Op(0, kind, value, inv, ret, n))
            elif kind == "w" and value in read_values:
                ops.append(Op(0, kind, value, inv, INF, n))
        history[key] = ops
    return history


def check(lines):
    """None when linearizable, else (key, ops that could not be placed)."""
    for key, ops in sorted(parse(lines).items()):
        bad = check_key(ops)
        if bad is not None:
            return key, bad
    return None


def self_test():
    cases = [
        # sequential and right
        ("sequential", True, [
            "0 0 w a 0 10 ok", "0 0 r a 20 30 ok", "1 0 w b 40 50 ok", "1 0 r b 60 70 ok"]),
        # a stale read after the write completed: not linearizable
        ("stale read", False, [
            "0 0 w a 0 10 ok", "1 0 r init 20 30 ok"]),
        # a read concurrent with the write may see either value
        ("concurrent read", True, [
            "0 0 w a 0 100 ok", "1 0 r init 10 20 ok", "2 0 r a 30 40 ok"]),
        # once a read saw the new value, a later read must not see the old
        ("new-old inversion", False, [
            "0 0 w a 0 100 ok", "1 0 r a 10 20 ok", "2 0 r init 30 40 ok"]),
        # a failed write may take effect late, even after its client gave up
        ("failed write seen later", True, [
            "0 0 w a 0 10 fail", "1 0 r init 20 30 ok", "1 0 r a 40 50 ok"]),
        # ... but only once: a, b, then a again cannot be
        ("failed write seen twice", False, [
            "0 0 w a 0 10 fail", "1 0 r a 20 30 ok", "1 0 w b 40 50 ok",
            "1 0 r b 60 70 ok", "2 0 r a 80 90 ok"]),
        # a value never written
        ("phantom value", False, ["0 0 r z 0 10 ok"]),
        # keys are independent: a history right on each key
        ("two keys", True, [
            "0 0 w a 0 10 ok", "0 1 w b 0 10 ok", "1 1 r b 20 30 ok", "1 0 r a 20 30 ok"]),
        # two writes concurrent with two reads that saw them in opposite
        # orders: the classic non-linearizable history
        ("opposite orders", False, [
            "0 0 w a 0 100 ok", "1 0 w b 0 100 ok",
            "2 0 r a 10 20 ok", "2 0 r b 30 40 ok",
            "3 0 r b 10 20 ok", "3 0 r a 30 40 ok"]),
    ]
    failed = 0
    for name, expected, lines in cases:
        got = check(lines) is None
        print("%-26s %s (expected %s)%s" % (name, "linearizable" if got else "NOT linearizable",
              "linearizable" if expected else "not", "" if got == expected else "  <-- WRONG"))
        failed += got != expected
    return 1 if failed else 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        lines = f.read().splitlines()
    history = parse(lines)
    total = sum(len(ops) for ops in history.values())
    result = check(lines)
    if result is None:
        print("linearizable: %d operations on %d keys" % (total, len(history)))
        return 0
    key, bad = result
    print("NOT linearizable: key %s; the longest order that could be placed ends with:" % key)
    for op in bad[-8:]:
        print("  line %d: %s %s [%d, %s]" % (op.line, op.kind, op.value, op.inv,
              "never returned" if op.ret == INF else "%d" % op.ret))
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
