"""Simplification to textbook form — the one module that owns it.

`simplify(e)` rebuilds e bottom-up through canonical constructors (memoised, so shared
subtrees are simplified once). Each rewrite that fires is recorded by its name in
REWRITES, so the derivation can say which identities turned `ones(n)'@diag(x)` into `x'`.
"""
from __future__ import annotations

import bisect
import itertools
import zlib
from collections import Counter
from fractions import Fraction
from math import gcd
from operator import attrgetter, eq, itemgetter

from mcalc import algebra as A
from mcalc import expr as E
from mcalc import identities as ID
from mcalc.expr import Expr
from mcalc.types import ELEMENTWISE_BINARY, ELEMENTWISE_UNARY, SCALAR, dim_mul

_ELEMENTWISE = frozenset(("add", "mul", "pow") + ELEMENTWISE_UNARY + ELEMENTWISE_BINARY)
_OP = attrgetter("op")
_IS_SCALAR = attrgetter("is_scalar")
MAX_FOLDED_POWER = 64          # fold numeric powers only while the result stays small
MAX_FOLDED_BITS = 256
MAX_ROOT = 16                  # and exact roots of numbers up to the 16th (4^0.5 = 2)

REWRITES = (
    ("fold constants", "numbers combined, 0 and 1 dropped, x*x = x^2, 1⊗v = v", "algebra"),
    ("like terms", "2x + x = 3x", "algebra"),
    ("1ᵀdiag(v) = vᵀ", "ones(n)'@diag(v) = v', diag(v)@ones(n) = v", "P&H §4.4, §5"),
    ("diag(a)diag(b) = diag(a⊗b)", "diag(a)@diag(b) = diag(a*b)", "P&H §4.5.3"),
    ("diag(a)v = a⊗v", "diag(a)@v = a*v, v'@diag(a) = (a*v)'", "P&H §4.2"),
    ("diag and vec are linear", "diag(a) + diag(b) = diag(a + b) (a, b columns), "
     "vec(A) + vec(B) = vec(A + B), vec(A)*vec(B) = vec(A*B) (element-wise), diag(1) = I",
     "MC §10.2.2; Magnus & Neudecker"),
    ("vec of an element-wise function", "f(vec(A)) = vec(f(A)) for an element-wise f",
     "Magnus & Neudecker §2.4"),
    ("1ᵀv = sum(v)", "ones(n)'@v = sum(v), ones(m)'@M@ones(n) = sum(M)", "P&H §4.4"),
    ("sum(u⊗v) = uᵀv", "sum(u*v) = u'@v for vectors u, v (the dot product)", "P&H §5, §8.4"),
    ("transpose rules", "(AB)' = B'A' (and A'B' = (BA)', one transpose instead of two), "
     "(A')' = A, S' = S (S symmetric or diagonal: X*eye(n); X'@X, A@S@A' and their "
     "inverses), (A + B)' = A' + B', "
     "tr(A') = tr(A), det(A') = det(A)", "MC §1"),
    ("identity", "I@A = A", "algebra"),
    ("inverse laws", "inv(inv(A)) = A, A@inv(A) = inv(A)@A = I", "algebra (the inverse)"),
    ("diagonal matrices", "diag(diag(v)) = v (diag of a matrix: its diagonal), "
     "diag(I) = diag(ones(n)@ones(n)') = ones(n), diag(u@v') = u*v, diag(A + B) = diag(A) + "
     "diag(B) (when each has a form of its own), norm(diag(v)) = norm(v)", "algebra"),
    ("canonical order", "operands of sums and products in one order, nested sums and "
     "products flattened: x*2 = 2*x, a + (b + c) = a + b + c", "algebra"),
    ("associativity", "A@(B@C) = A@B@C", "algebra"),
    ("factor common operand", "A@x + B@x = (A + B)@x", "algebra"),
    ("scalars out of products", "(cA)@B = c(A@B)", "algebra"),
    ("distribute a diagonal matrix", "(A + B)@diag(v) = A@diag(v) + B@diag(v) when every "
     "term takes it in (I@diag(v) = diag(v), u@ones(n)'@diag(v) = u@v')", "algebra"),
    ("centred sums vanish", "sum(v - mean(v)) = mean(v - mean(v)) = 0", "algebra"),
    ("mixed product (A⊗B)(C⊗D) = AC⊗BD", "kron(A, B)@kron(C, D) = kron(A@C, B@D)", "MC §10.2"),
    ("common denominator", "a/b + c/d = (a*d + b*c)/(b*d), then p*q/q = p (exact division)",
     "algebra"),
    ("factor out", "a*b + a*c = a*(b + c), 1/2*A + 1/2*A' = (A + A')/2, when shorter",
     "algebra"),
    ("expand", "a*(b + c) = a*b + a*c, when shorter", "algebra"),
    ("commutation laws", "commutation(m, n)' = commutation(n, m); commutation(m, n)@commutation("
     "n, m) = I; kron(A, B)@commutation(n, q) = commutation(m, p)@kron(B, A) (A m×n, B p×q); "
     "commutation(m, n)@vec(A) = vec(A') (A m×n)", "Magnus & Neudecker §3.7"),
    ("diagonal embedding", "kron(u', eye(n))@diag(vec(M))@kron(ones(n), eye(n)) = diag(M@u)",
     "Magnus & Neudecker"),
    ("unvec", "kron(eye(n), vec(M)')@kron(vec(eye(n)), eye(m)) = M', kron(vec(eye(n))', eye(m))@"
     "kron(eye(n), vec(M)) = M (M m×n)",
     "Magnus & Neudecker §2.4"),
    ("Kronecker laws", "kron(A, B)' = kron(A', B'); kron(A, B)*kron(C, D) = kron(A*C, B*D); kron(I, I) = I; "
     "kron(c, B) = c*B (c scalar); kron(u', v) = kron(v, u') = v@u' (u, v columns)", "MC §10.2"),
) + tuple((i.name, i.formula, i.source) for i in ID.IDENTITIES)


class Simplifier:
    """Bottom-up through the canonical constructors (memoised: shared subtrees once, no
    recursion); each element-wise cluster is brought to textbook form (mcalc.algebra)
    where it meets a non-element-wise parent, or is the result."""

    def __init__(self):
        self.memo: dict[Expr, Expr] = {}        # node -> its canonical form
        self.final: dict[Expr, Expr] = {}       # node -> its textbook form
        self.normed: dict[Expr, Expr] = {}      # cluster -> its textbook form
        self.finished: dict[Expr, Expr] = {}    # node -> with its inner clusters in it
        self.tokens: dict[Expr, int] = {}
        self.keys: dict[Expr, tuple] = {}       # order_key's cache
        self.sort_keys: dict[Expr, tuple] = {}  # mul_'s sort key of a factor
        self.prints: dict[Expr, int] = {}       # fingerprint's cache
        self.honest: dict[Expr, Expr] = {}      # node -> with its shape shown (keep_shape)
        self.clean: set[Expr] = set()           # nodes both finish and keep_shape leave as
                                                # they are, that as_is has seen (or leaves)
        self.too_big: set[Expr] = set()         # clusters algebra.to_poly gave up on
        # products mul_ built -> the ids of their factors' bases, or None (see _grow)
        self.bases: dict[Expr, set | None] = {}
        self.grown: dict[Expr, tuple] = {}      # grown product -> (product, new factors)
        self.plain: dict[Expr, frozenset] = {}  # clusters of _worth 0 (see there)
        self.fired: list[str] = []              # the rules of this call, named once
        self.distributing = False               # inside _distribute_diag (no nesting)
        # Provenance: every rule noted (with repeats), and for each node that changed, the
        # rules that changed it and its operands (memo), its cluster's textbook form
        # (normed) or the whole call (final) — so a later call that meets the same node
        # names them again, as a fresh simplifier would, without starting afresh.
        self.trail: list[str] = []
        self.noted = 0                          # len(self.trail) (asked at every node: a
                                                # call less), kept by note and T_
        self.why: dict[Expr, tuple] = {}
        self.why_normed: dict[Expr, tuple] = {}
        self.why_final: dict[Expr, tuple] = {}

    def note(self, rule: str):
        self.trail.append(rule)
        self.noted += 1
        if rule not in self.fired:
            self.fired.append(rule)

    def recall(self, rules: tuple):
        for rule in rules:
            self.note(rule)

    def __call__(self, e: Expr) -> Expr:
        if not e.args:                          # a leaf is its own textbook form
            return e
        final = self.final
        if e in final:                          # (in and [], not get: a call less)
            if e in self.why_final:
                self.recall(self.why_final[e])
            return final[e]
        memo, why, trail = self.memo, self.why, self.trail
        built, prefixes = [], []
        stack = [e]
        while stack:                            # E.postorder, inline: this is the hot loop
            node = stack.pop()
            if node is None:                    # (a mark: the node below it has its
                node = stack.pop()              # operands done, and is built now)
                args = node.args
            else:
                if node in memo:
                    continue
                args = node.args
                if not args:                    # a leaf
                    built.append(node)
                    memo[node] = self.honest[node] = self.finished[node] = node
                    self.clean.add(node)
                    continue
                pending = False                 # (a loop: a comprehension is a call)
                for a in args:
                    if a not in memo:
                        if not pending:         # back once its operands are done
                            stack.append(node)
                            stack.append(None)
                            pending = True
                        stack.append(a)
                if pending:
                    continue
            built.append(node)
            op = node.op
            if op == "matmul" and args[0].op == "matmul":
                prefixes.append(args[0])
            k = self.noted
            # (a node of a cluster takes its operands as they are: operands(), inline)
            operands = list(map(memo.__getitem__, args)) if op == "add" or op == "mul" or \
                op == "pow" and args[1].op == "num" else self.operands(node, memo)
            # (the two commonest constructors called directly: a look-up and a call less)
            out = mul_(self, operands, node.shape, node) if op == "mul" else \
                add_(self, operands, node.shape) if op == "add" else \
                _BUILD[op](self, node, operands)
            memo[node] = out
            if out is node:
                self.as_is(node, operands)
                continue
            if out not in memo:
                memo[out] = out
            w, mixed = (), False                # its operands' rules, then its own
            for a in args:
                if a in why:
                    mixed = bool(w)
                    w += why[a]
            if self.noted > k:
                w += tuple(trail[k:])
                mixed = True
            if w:                               # (one operand's rules are distinct already)
                why[node] = tuple(dict.fromkeys(w)) if mixed else w
        if prefixes:
            self.forget(e, built, prefixes)
        k = self.noted
        out = memo[e]
        if out is not e:                        # e itself: its clusters are normal already
            finished = self.finished
            out = finished[out] if out in finished else self.finish(out)
        op = out.op
        if op == "add" or op == "mul" or op == "pow" and out.args[1].op == "num":
            normed = self.normed                # (A.is_cluster, inline; and normal's
            if out not in normed or normed[out] is not out:    # commonest answer)
                out = self.normal(out)
        honest = self.honest
        if out not in honest or honest[out] is not out or out.shape != e.shape:
            out = self.keep_shape(out, e.shape)     # (its commonest answer, inline)
        final[e] = final[out] = out
        if out is not e:
            rules = why.get(e, ())              # (distinct already, as every why is)
            if self.noted > k:
                rules = tuple(dict.fromkeys(rules + tuple(trail[k:])))
            self.why_final[e] = rules
            if rules:
                self.recall(rules)
        return out

    def operands(self, node: Expr, done: dict) -> list:
        """node's operands as `done` has them, each cluster in textbook form unless node is
        itself in the cluster (A.is_cluster inline: a call per operand was the cost)."""
        op = node.op
        args = list(map(done.__getitem__, node.args))       # (in C)
        if op == "add" or op == "mul" or op == "pow" and node.args[1].op == "num":
            return args
        normed = self.normed
        for i, a in enumerate(args):            # (a loop: a comprehension is a call)
            op = a.op
            if (op == "add" or op == "mul" or op == "pow" and a.args[1].op == "num") and \
                    (a not in normed or normed[a] is not a):     # (normal's commonest
                args[i] = self.normal(a)                         # answer, inline)
        return args

    def forget(self, e: Expr, built: list, prefixes: list):
        """A chain written ((A1@A2)@A3)@... is simplified a prefix at a time, each prefix a
        flat product (which the next extends as a final run); kept, they would take memory
        quadratic in the chain's length. A prefix that nothing else in e uses is forgotten
        once the chain is built: should it come again, it is simplified again."""
        uses = Counter(id(a) for n in built for a in n.args)
        new = set(map(id, built))              # (one simplified before may be used again)
        memo, keep = self.memo, self.memo[e]
        for p in prefixes:
            if uses[id(p)] == 1 and id(p) in new and p is not e:
                self.why.pop(p, None)
                out = memo.pop(p)
                if out is not keep and memo.get(out) is out:
                    del memo[out]

    def keep_shape(self, root: Expr, shape) -> Expr:
        """The invariant of simplification: root has `shape` and so has its text when it
        is parsed back. A rewrite that leaves a scalar where an array stood (x/x -> 1 in an
        n-vector, or an element-wise node whose operands all became scalars) is spread
        over ones(n), ones(n)' or ones(m)@ones(n)', so the result still feeds back."""
        done = self.honest
        for node in () if root in done else self.todo(root, done):
            args = node.args
            if args:
                args = tuple(map(done.__getitem__, args))
                out = node if args == node.args else Expr(node.op, args, node.shape,
                                                          node.name, node.value)
            else:
                out = node
            if _scalars_only(node, args):
                scalars = args if node.op == "mul" else \
                    (Expr(node.op, args, SCALAR, node.name, node.value),)
                out = Expr("mul", scalars + (filled(1, node.shape),), node.shape)
            done[node] = done[out] = out
        root = done[root]
        if root.shape != shape and root.is_scalar:
            root = _spread(self, root, shape)
        return root

    def finish(self, root: Expr) -> Expr:
        """root with every cluster that a constructor built below a non-element-wise node
        (the scalars taken out of x*(A@y), say) in textbook form too."""
        done = self.finished
        got = done.get(root)
        if got is not None:
            return got
        for node in self.todo(root, done):
            args = node.args
            if not args:
                done[node] = node
                continue
            args = self.operands(node, done)
            if tuple(args) == node.args:
                done[node] = node
                self.as_is(node, args)
            else:
                done[node] = _BUILD[node.op](self, node, args)
        return done[root]

    def as_is(self, node: Expr, operands: list):
        """node came out of its constructor as it was, from `operands` (what operands()
        gave): record that finish and keep_shape leave it as it is too when that shows
        without a walk — its operands are the node's own, and those are left as they are
        (and for keep_shape, it is not an array of scalars). So they seldom walk."""
        args, finished, honest = node.args, self.finished, self.honest
        same = tuple(operands) == args
        if self.clean.issuperset(args):         # (the usual: one test, in C)
            if same:
                finished[node] = node
            if node.is_scalar or node.op not in _ELEMENTWISE or not all(map(_IS_SCALAR, args)):
                honest[node] = node             # (not _scalars_only, inline)
                if same:
                    self.clean.add(node)
            return
        if same:
            for a in args:
                if a not in finished or finished[a] is not a:
                    break
            else:
                finished[node] = node
        for a in args:
            if a not in honest or honest[a] is not a:
                return
        if node.is_scalar or node.op not in _ELEMENTWISE or not all(map(_IS_SCALAR, args)):
            honest[node] = node

    def todo(self, root: Expr, done: dict):
        """The nodes from root down that `done` lacks, operands first: root alone, without a
        walk, when its operands are all there (nearly always: a node a constructor just
        built from them); a grown product goes to postorder (which does not visit each of
        its factors)."""
        if root not in self.grown:
            for a in root.args:
                if a not in done:
                    if a.args:
                        break
                    done[a] = a                 # a leaf (a new number): its own form
            else:
                return (root,)
        return self.postorder(root, done)

    def postorder(self, root: Expr, done: dict):
        """E.postorder for finish and keep_shape, which leave a node as it is when its
        operands are: a product _grow built is left as it is, without its factors being
        visited, when the product it grew from and its new factors are."""
        grown = self.grown
        stack = [root]
        while stack:
            node = stack[-1]
            if node in done:
                stack.pop()
                continue
            g = grown.get(node)
            if g is not None:
                parts = (g[0],) + g[1]
                pending = [a for a in parts if a not in done]
                if pending:
                    stack.extend(pending)
                    continue
                if all(done[a] is a for a in parts):
                    stack.pop()
                    done[node] = node
                    continue
            pending = False                     # (a loop: a comprehension is a call)
            for a in node.args:
                if a not in done:
                    stack.append(a)
                    pending = True
            if pending:
                continue
            stack.pop()
            yield node

    def normal(self, e: Expr) -> Expr:
        got = self.normed.get(e)
        if got is None:
            k = self.noted
            level = _worth(self, e)
            got = _textbook(self, e, level) if level else e     # (most clusters: level 0)
            self.normed[e] = self.normed[got] = got
            if got is not e and self.noted > k:
                self.why_normed[e] = tuple(dict.fromkeys(self.trail[k:]))
        elif got is not e and e in self.why_normed:
            self.recall(self.why_normed[e])
        return got


def _scalars_only(node: Expr, args) -> bool:
    """An element-wise array all of whose operands (args, node's as keep_shape has them) are
    scalars: it would print, and parse back, as a scalar."""
    return node.op in _ELEMENTWISE and not node.is_scalar and all(map(_IS_SCALAR, args))


def simplify(e: Expr, fired: list | None = None) -> Expr:
    s = Simplifier()
    out = s(e)
    if fired is not None:
        fired.extend(r for r in s.fired if r not in fired)
    return out


def _rebuild(s, e, args):
    return e if tuple(args) == e.args else Expr(e.op, tuple(args), e.shape, e.name, e.value)


# ---- a stable order for commutative operands ------------------------------------

def _num(v, den: int = 0) -> Expr:
    """E.num of v (an int or a Fraction; with `den`, v/den for ints in lowest terms, den
    > 0), looked up by (numerator, denominator) in a small table first: building a node
    hashes and compares its Fraction value in Python, a look-up by two ints does not."""
    key = (v, den) if den else (v._numerator, v._denominator) if type(v) is Fraction \
        else v.as_integer_ratio()
    got = _NUMS.get(key)
    if got is None:
        if len(_NUMS) >= MAX_NUMS:                 # bounded across requests
            _NUMS.clear()
        got = _NUMS[key] = Expr("num", (), SCALAR, None,
                                v if type(v) is Fraction else Fraction(*key))
    return got


def _sum_of(a: Fraction, b: Fraction) -> Fraction:
    """a + b, in ints when both are whole numbers (Fraction's + is Python code)."""
    if a._denominator == 1 == b._denominator:
        return _num(a._numerator + b._numerator, 1).value
    return a + b


_NUMS: dict[tuple, Expr] = {}
MAX_NUMS = 1024


_OP_RANK = {"num": 0, "dim": 1, "const": 2, "var": 3,
            # functions before sums and products: cos(x + x^2)*(1 + 2*x), as P&H print it
            **{f: 3.5 for f in ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid",
                                "relu", "abs", "sign", "softmax", "pow")}}


def _natural(name: str | None) -> tuple:
    """A name's place in the order: u2 before u10 (its trailing number compared as one)."""
    if not name:
        return "", -1
    stem = name.rstrip("0123456789")
    return stem, int(name[len(stem):]) if len(stem) < len(name) else -1


_NO_NAME = _natural(None)
_DEPTH0, _DEPTH1 = itemgetter(0), itemgetter(1)  # of a key


def order_key(e: Expr, keys: dict) -> tuple:
    """An order that compares in constant time: the node and its operands to two levels
    (what a reader sees first: x before y, sin(x) before sin(y)); a tie is settled by
    fingerprint(), which makes it total. `keys` caches (key to depth 0, 1, 2) per node —
    the simplifier's own, so it lives as long as one request."""
    got = keys.get(e)
    if got is None:
        stack = [e]
        while stack:                            # E.postorder, inline (a call a node less)
            node = stack[-1]
            if node in keys:
                stack.pop()
                continue
            pending = False
            for a in node.args:
                if a not in keys:
                    stack.append(a)
                    pending = True
            if pending:
                continue
            stack.pop()
            leaf = not node.args
            if leaf:
                got = _LEAF_KEYS.get(node)
                if got is not None:
                    keys[node] = got
                    continue
            value = node.value
            rank = _OP_RANK.get(node.op, 4)
            if value is None:
                text = ""
            elif type(value) is Fraction:       # str(value or ""), without Fraction's calls
                n = value._numerator
                text = "" if not n else str(n) if value._denominator == 1 else \
                    f"{n}/{value._denominator}"
            else:
                text = str(value or "")
                if value == "differential":     # dX last
                    rank = 5
            if node.op == "exp" and node.args[0] is E.ONE:
                own = (_OP_RANK["const"], "const", ("e", -1), "")     # e: with pi, 2*e*x
            else:
                name = node.name                # (most nodes have none: no call for them)
                own = (rank, node.op, _natural(name) if name else _NO_NAME, text)
            kids = list(map(keys.__getitem__, node.args[:4]))
            size = node.size
            got = keys[node] = (own + (size,), own + (tuple(map(_DEPTH0, kids)), size),
                                own + (tuple(map(_DEPTH1, kids)), size))
            if leaf:
                if len(_LEAF_KEYS) >= MAX_LEAF_KEYS:        # bounded across requests
                    _LEAF_KEYS.clear()
                _LEAF_KEYS[node] = got
        got = keys[e]
    return got[2]


# A leaf's keys are a function of the leaf alone (x, 2, n: most factors a product sorts),
# so they are kept across requests, like _NUMS: in a table of bounded size.
_LEAF_KEYS: dict[Expr, tuple] = {}
MAX_LEAF_KEYS = 1024


def fingerprint(e: Expr, keys: dict, prints: dict) -> int:
    """A deterministic fingerprint of the whole tree at e (whose order_key is known),
    which settles a tie of order keys: a crc32 of each node's own key, its shape and its
    operands' fingerprints. Computed only for a tie (rare), cached in `prints`."""
    got = prints.get(e)
    if got is None:
        for node in E.postorder(e, prints):     # (rare: no need to inline the walk)
            own = keys[node][0][:-1]
            prints[node] = zlib.crc32(repr((own, node.shape,
                                            list(map(prints.__getitem__, node.args)))).encode())
        got = prints[e]
    return got


# ---- constructors ------------------------------------------------------------------

_all_ones = A.all_ones


def coeff_and_rest(e: Expr) -> tuple[Fraction, Expr | None]:
    """2*x -> (2, x); x -> (1, x); 3 -> (3, None)."""
    if e.op == "num":
        return e.value, None
    if e.op == "mul" and e.args[0].op == "num":
        rest = e.args[1:]
        return e.args[0].value, rest[0] if len(rest) == 1 else Expr("mul", rest, e.shape)
    return _F1, e


def _coefficient(e: Expr) -> Fraction:
    """coeff_and_rest(e)[0], without building the rest."""
    if e.op == "num":
        return e.value
    if e.op == "mul" and e.args[0].op == "num":
        return e.args[0].value
    return _F1


_F1 = Fraction(1)                       # (Fractions are immutable: shared, not re-made)
# Hot paths test a Fraction by its slots, c._numerator < 0 for c < 0: Fraction's
# comparisons and properties are Python calls (and < 0 an abstract-class check).


def scale(c: Fraction, e: Expr | None, shape) -> Expr:
    if e is None:
        return filled(c, shape)
    if c is _F1 or c._numerator == c._denominator:         # c == 1
        return e
    if c._numerator == 0:
        return E.zeros(e.shape)
    if e.op == "mul":
        return Expr("mul", (_num(c),) + e.args, e.shape)
    return Expr("mul", (_num(c), e), e.shape)


def add_(s, terms, shape=None) -> Expr:
    flat = []
    for t in terms:
        if t.op == "add":
            flat.extend(t.args)
        elif not (t.op == "zeros" or t is E.ZERO):
            flat.append(t)
    shape = shape or _broadcast(terms)
    if not flat:
        return E.zeros(shape)
    combined: dict = {}
    linear = False                      # a diag or vec term (_collect_linear)
    for t in flat:
        c, rest = coeff_and_rest(t)
        if rest is not None and rest.op in _LINEAR:
            linear = True
        key = rest if rest is None or rest.shape == shape or rest.shape == SCALAR \
            else ("b", rest)
        if key in combined:
            if s:
                s.note("like terms")
            combined[key] = (_sum_of(combined[key][0], c), rest, None)
        else:
            combined[key] = (c, rest, t)    # (t: the term, while nothing joins it)
    out = []
    numbers = None
    for c, rest, t in combined.values():
        if rest is None:
            numbers = c if numbers is None else _sum_of(numbers, c)
        elif c._numerator:
            # the term itself when nothing joined it: scale would only build it again
            same = t is not None and (rest is t or c._numerator != c._denominator and (
                len(t.args) > 2 or rest.op != "mul" and rest.shape == t.shape))
            out.append(t if same else scale(c, rest, rest.shape))
    if numbers is not None and numbers._numerator:
        out.append(_num(numbers))
    if len(out) > 1:
        out.sort(key=_transposes)
    if out and _coefficient(out[0])._numerator < 0:      # 1 - x rather than -x + 1
        first_positive = next((t for t in out if _coefficient(t)._numerator > 0), None)
        if first_positive is not None:
            out.remove(first_positive)
            out.insert(0, first_positive)
    if linear and s and len(out) > 1:
        out = _collect_linear(s, out)
    if s and len(flat) > 1:
        out = _factor_common(s, out, shape)
    if not out:
        return E.zeros(shape)
    if len(out) == 1 and out[0].shape == shape:
        return out[0]
    if shape != SCALAR and all(t.is_scalar for t in out):   # scalars spread over an array
        return _spread(s, out[0] if len(out) == 1 else Expr("add", tuple(out), SCALAR), shape)
    return Expr("add", tuple(out), shape)


_LINEAR = ("diag", "vec")


def _linear_key(e: Expr | None):
    """diag of a column and vec, by operand shape: what _collect_linear and mul_ merge."""
    if e is not None and (e.op == "vec" or e.op == "diag" and e.args[0].is_column):
        return e.op, e.args[0].shape
    return None


def _collect_linear(s, terms: list) -> list:
    """c*diag(a) + d*diag(b) = diag(c*a + d*b), and so for vec: the element-wise
    derivative of a sum is one diagonal (∂vec(f)/∂vec(X) = diag(vec(f'(X)))), and the
    sum inside it is then simplified as element-wise algebra. An identity joins a
    diagonal (I = diag(1)) and a constant a vec (vec(A) + c = vec(A + c)): one term
    instead of two is shorter."""
    groups: dict = {}               # (op, operand shape) -> [(index, like, operand)]
    loose = []
    for i, t in enumerate(terms):
        c, rest = coeff_and_rest(t)
        key = _linear_key(rest)
        if key is not None:
            groups.setdefault(key, []).append((i, rest, scale(c, rest.args[0],
                                                                rest.args[0].shape)))
        elif rest is None or rest.op == "eye" or A.all_ones(rest):
            loose.append((i, rest, _num(c)))
    for i, rest, c in loose:
        if rest is not None and rest.op == "eye":
            group = groups.get(("diag", (rest.shape[0], "1")))
        else:
            group = next((g for (op, _), g in groups.items() if op == "vec"), None)
        if group is not None:
            group.append((i, None, c))
    merged = {g[0][0]: g for g in groups.values() if len(g) > 1}
    if not merged:
        return terms
    s.note("diag and vec are linear")
    absorbed = {i for g in merged.values() for i, _, _ in g[1:]}
    out = []
    for i, t in enumerate(terms):
        g = merged.get(i)
        if g is not None:
            t = _linear(s, g[0][1], add_(s, [inner for _, _, inner in g]))
        if i not in absorbed and t.op != "zeros":
            out.append(t)
    return out


def _linear(s, like: Expr, inner: Expr) -> Expr:
    """diag(inner) or vec(inner), as `like` is, built canonically."""
    if like.op == "diag":
        return _diag(s, inner)
    return _func(s, Expr("vec", (inner,), like.shape), [inner])


def _diag(s, a: Expr) -> Expr:
    """diag(a), a a column, built canonically (diag(ones(n)) = eye(n), scalars out)."""
    e = Expr("diag", (a,), (a.shape[0], a.shape[0]))
    return _func(s, e, [a])


def _diagonal(s, m: Expr) -> Expr | None:
    """The diagonal of the square matrix m as a column, when it has a form of its own
    (c*eye(n), c*diag(v), ones, c*u@v' = c*u*v), else None."""
    sc = [x for x in m.args if x.is_scalar] if m.op == "mul" else []
    rest = [x for x in m.args if not x.is_scalar] if m.op == "mul" else [m]
    if len(rest) != 1:
        return None
    r = rest[0]
    if r.op == "eye" or _all_ones(r):
        return mul_(s, sc + [E.ones(m.shape[0])])
    if r.op == "diag" and r.args[0].is_column:
        return mul_(s, sc + [r.args[0]])
    if r.op == "matmul" and len(r.args) == 2 and r.args[0].is_column and \
            r.args[1].op == "T" and r.args[1].args[0].is_column:    # an outer product u@v'
        return mul_(s, sc + [r.args[0], r.args[1].args[0]], (m.shape[0], "1"))
    return None


def _transposes(e: Expr) -> int:
    """How many transposed matrices a term shows: A + A' rather than A' + A."""
    if e.size >= 40:                              # small terms only
        return 0
    count, todo = 0, [e]
    for n in todo:                                # (a list read as it grows: no recursion,
        if n.op == "T" and "1" not in n.shape:    # and no call a node; is_matrix, inline)
            count += 1
        todo += n.args[:3]                        # (an operand is smaller than its node)
    return count


def _broadcast(operands):
    """The shape of an element-wise node of these operands: the first array's."""
    for x in operands:
        if x.shape != SCALAR:
            return x.shape
    return SCALAR


def _factor_common(s, terms, shape):
    """A@x + B@x -> (A + B)@x, and x'@A + x'@B -> x'@(A + B), until no two terms share an
    outer operand."""
    while len(terms) > 1 and _products(terms) > 1:
        merged = _factor_once(s, terms, shape)
        if merged is None:
            break
        terms = merged
    return terms


def _products(terms) -> int:
    """How many of the terms may be @ products as _factor_once reads them (through a
    number and scalar factors): fewer than two share nothing, and their parts need not be
    built to see it."""
    count = 0
    for t in terms:
        op = t.op
        if op == "matmul" or op == "T" or op == "mul" and \
                not _IN_PRODUCT.isdisjoint(map(_OP, t.args)):
            count += 1
    return count


_IN_PRODUCT = frozenset(("matmul", "T", "mul"))    # (a product inside a product: looked at)


def _factors(e: Expr | None) -> tuple | None:
    """The operands of an @ product, (A@B)' read as B'@A'."""
    if e is None:
        return None
    if e.op == "matmul":
        return e.args
    if e.op == "T" and e.args[0].op == "matmul":
        return tuple(_t_leaf(None, x) or Expr("T", (x,), (x.shape[1], x.shape[0]))
                     for x in reversed(e.args[0].args))
    return None


def _factor_once(s, terms, shape):
    split = []                          # (i, number, scalar factors, @ operands), each once
    for i, t in enumerate(terms):
        c, scalars, rest = _scaled(t)
        factors = _factors(rest)
        # (a scalar spread over a vector sum, B@x + x'@A@x, shares nothing with B@x)
        if factors is not None and rest.shape == shape:
            split.append((i, c, scalars, factors))
    if len(split) < 2:
        return None
    for side in (-1, 0):
        groups: dict = {}
        for product in split:
            groups.setdefault(product[3][side], []).append(product)
        for operand, idx in groups.items():
            if len(idx) < 2:
                continue
            others = []
            for i, c, scalars, factors in idx:
                remaining = factors[:-1] if side == -1 else factors[1:]
                inner = remaining[0] if len(remaining) == 1 else matmul_(None, list(remaining))
                inner = scale(c, inner, inner.shape)
                others.append(mul_(None, scalars + [inner]) if scalars else inner)
            summed = add_(None, others)
            pair = [summed, operand] if side == -1 else [operand, summed]
            s.note("factor common operand")
            chosen = {product[0] for product in idx}
            return [t for i, t in enumerate(terms) if i not in chosen] + [matmul_(s, pair)]
    return None


def _scaled(t: Expr) -> tuple:
    """t as (number, scalar factors, the rest): 2*(x'@x)*(A@x) is (2, [x'@x], A@x), so
    that a@-product with scalars in front shares its operands like any other."""
    c, rest = coeff_and_rest(t)
    if rest is not None and rest.op == "mul" and not rest.is_scalar:
        arrays = [f for f in rest.args if not f.is_scalar]
        if len(arrays) == 1:
            return c, [f for f in rest.args if f.is_scalar], arrays[0]
    return c, [], rest


def mul_(s, factors, shape=None, node: Expr | None = None) -> Expr:
    """The canonical element-wise product of `factors` (with s, the simplifier's own: its
    rewrites noted, its caches used); `node`, a product they may be the factors of, is
    given back without a look-up when they are."""
    flat = factors
    ops = list(map(_OP, flat))                  # (in C: no comprehension call)
    if "mul" in ops:                            # a*(b*c) = a*b*c
        if s is not None and len(factors) > 1:  # a product mul_ built, and a few more
            bases = s.bases                     # factors: _grow, or else the general way
            for product in factors:
                if product.op == "mul" and product in bases:
                    got = _grow(s, factors, shape, product)
                    if got is not None:
                        return got
                    break
        flat = []
        for f in factors:
            if f.op == "mul":
                flat.extend(f.args)
            else:
                flat.append(f)
        ops = list(map(_OP, flat))
    if "kron" in ops:
        flat = _kron_hadamard(s, flat)
        ops = list(map(_OP, flat))
    shape = shape or _broadcast(flat)
    if "num" in ops or "zeros" in ops or "ones" in ops or "matmul" in ops:
        numbers, rest = [], []
        for f, op in zip(flat, ops):
            if op == "num":
                numbers.append(f)
            elif op == "zeros":
                return E.zeros(shape)
            elif (op == "ones" or op == "matmul") and _all_ones(f) and f.shape == shape and \
                    any(g.shape == shape and g is not f for g in flat):
                if s:
                    s.note("fold constants")    # ones(n)*v = v
            else:
                rest.append(f)
    else:                                       # (nothing to sort out: no call a factor)
        numbers, rest = (), list(flat)
    number = E.ONE                              # the numbers' product
    if numbers:
        number = numbers[0]
        if len(numbers) > 1:                    # (in ints: Fraction's * is Python code)
            n = d = 1
            for f in numbers:
                n *= f.value._numerator
                d *= f.value._denominator
            g = gcd(n, d)
            number = _num(n // g, d // g)
        # (Fraction's slots: its == and properties are Python calls, and this is hot)
        if number.value._numerator == 0:
            return E.zeros(shape)
    if s is not None and "vec" in ops and ops.count("vec") > 1:
        rest = _vec_product(s, rest)
    if "sign" in ops:
        rest, merged = _abs_sign(s, rest)
        if merged:
            ops.append("pow")                   # (u may meet a power of its own)
    k = len(rest)                               # (kept as rest changes: len is a call)
    if "pow" in ops or k > 1 and len(set(rest)) < k:
        rest = _powers(s, rest)
        k = len(rest)
    if "pow" in ops and ("T" in ops or "matmul" in ops or "diag" in ops):
        rest = _softmax_in_product(s, rest)     # (after S*S^-2 = S^-1)
        k = len(rest)
    if k > 1:
        # the keys are looked up in C: a product that grows by a factor a step (the
        # chain rule's) makes no Python call per factor it already had
        keys, sort_keys, prints = (s.keys, s.sort_keys, s.prints) if s else ({}, {}, {})
        for f in rest:
            if f not in sort_keys:
                sort_keys[f] = (0 if f.is_scalar else 1, order_key(f, keys))
        rest.sort(key=sort_keys.__getitem__)
        ranks = list(map(sort_keys.__getitem__, rest))
        if any(map(eq, ranks, ranks[1:])):     # a tie: the fingerprints settle it
            rest.sort(key=lambda f: (sort_keys[f], fingerprint(f, keys, prints)))
    if not rest or numbers and (number.value._numerator != 1 or
                                number.value._denominator != 1):
        rest.insert(0, number)                  # (a lone number: its own node, as _num gives)
        k += 1
    for f in rest:
        if f.shape == shape:
            break
    else:
        # what carried the shape cancelled (x/x, x*x^-1): the scalar left is spread over
        # ones, so that the product still prints, and parses back, with its shape
        rest = [f for f in rest if f is not E.ONE] + [filled(1, shape)]
        k = len(rest)
    if k == 1:
        return rest[0]
    rest = tuple(rest)
    out = node if node is not None and rest == node.args and shape == node.shape and \
        node.name is None and node.value is None else Expr("mul", rest, shape)
    if s is not None and out not in s.bases:
        s.bases[out] = None                     # a product _grow may extend
    return out


def _abs_sign(s, factors: list) -> tuple[list, bool]:
    """abs(u)*sign(u) = u, abs(u)^k*sign(u) = u*abs(u)^(k-1) (k a whole number) — what
    the power rule makes of abs(u)^(k+1) — and u*sign(u) = abs(u) (the product rule's
    u*abs(u)), true at u = 0 too (sign(0) = 0). Returns the factors and whether any pair
    merged."""
    signs = {f.args[0]: i for i, f in enumerate(factors) if f.op == "sign"}
    out, gone, merged = list(factors), set(), False
    for i, f in enumerate(factors):
        base, k = (f.args[0], f.args[1]) if f.op == "pow" else (f, None)
        if base.op != "abs" or base.args[0] not in signs:
            continue
        if k is not None and (k.op != "num" or k.value._denominator != 1 or k.value < 2):
            continue
        u = base.args[0]
        j = signs.pop(u)
        gone.add(j)
        out[i] = u if k is None else \
            mul_(s, [u, pow_(s, base, _num(k.value - 1))], f.shape)
        merged = True
        if s:
            s.note(ID.ABS_SIGN.name)
    for i, f in enumerate(factors):             # u*sign(u) = abs(u)
        j = signs.get(f)
        if j is not None and i not in gone:
            del signs[f]
            gone.add(j)
            out[i] = Expr("abs", (f,), f.shape)
            merged = True
            if s:
                s.note(ID.ABS_SIGN.name)
    return ([f for i, f in enumerate(out) if i not in gone], merged)


def _softmax_in_product(s, factors: list) -> list:
    """M@exp(u)/sum(exp(u)) = M@softmax(u), exp(u)'@M/sum(exp(u)) = softmax(u)'@M,
    diag(exp(u))/sum(exp(u)) = diag(softmax(u)) and exp(u)@exp(u)'/sum(exp(u))^2 =
    softmax(u)@softmax(u)': the quotient by sum(exp(u)) joins the exp(u) at an end of a
    product (or a transpose, or in a diagonal matrix) — a scalar goes anywhere in a
    product — where the element-wise algebra cannot see it."""
    for k, f in enumerate(factors):
        if f.op != "pow" or f.args[0].op != "sum" or f.args[1].op != "num":
            continue
        twice = E.is_number(f.args[1], -2)
        if not twice and not E.is_number(f.args[1], -1):
            continue
        e = f.args[0].args[0]
        if e.op != "exp" or not e.is_column:
            continue
        soft = Expr("softmax", e.args, e.shape)
        for j, g in enumerate(factors):
            ends = g.op == "matmul" and g.args[0] is e, \
                g.op == "matmul" and g.args[-1].op == "T" and g.args[-1].args[0] is e
            if twice:
                if not all(ends):                              # e@e'/S^2
                    continue
                st = Expr("T", (soft,), g.args[-1].shape)
                new = Expr("matmul", (soft,) + g.args[1:-1] + (st,), g.shape)
            elif g.op == "diag" and g.args[0] is e:
                new = Expr("diag", (soft,), g.shape)
            elif g.op == "T" and g.args[0] is e:
                new = Expr("T", (soft,), g.shape)
            elif g.op == "matmul" and g.args[-1] is e:
                new = Expr("matmul", g.args[:-1] + (soft,), g.shape)
            elif g.op == "matmul" and g.args[0].op == "T" and g.args[0].args[0] is e:
                new = Expr("matmul", (Expr("T", (soft,), g.args[0].shape),) + g.args[1:],
                           g.shape)
            elif ends[1]:                                      # M@exp(u)'/S
                new = Expr("matmul", g.args[:-1] + (Expr("T", (soft,), g.args[-1].shape),),
                           g.shape)
            else:
                continue
            if s:
                s.note(ID.SOFTMAX.name)
            return [new if i == j else h for i, h in enumerate(factors) if i != k]
    return factors


def _vec_product(s, factors: list) -> list:
    """vec(A)*vec(B) = vec(A*B) for A, B of one shape (the Hadamard product is taken
    element by element, in any arrangement of the elements)."""
    groups: dict = {}
    for f in factors:
        if f.op == "vec":
            groups.setdefault(f.args[0].shape, []).append(f)
    many = [g for g in groups.values() if len(g) > 1]
    if not many:
        return factors
    s.note("diag and vec are linear")
    gone = {id(f) for g in many for f in g}
    return [f for f in factors if id(f) not in gone] + \
        [_linear(s, g[0], mul_(s, [f.args[0] for f in g])) for g in many]


def _powers(s, factors: list) -> list:
    """x^a * x^b = x^(a+b) for equal bases of one shape. With s, the factors are the
    simplifier's own forms, which pow_ leaves as they are: only a merged power is built
    (without s, a softmax of zeros passes a power for pow_ to fold)."""
    if s is not None:                   # (the usual: each base once, nothing to merge)
        bases = set()
        for f in factors:
            base = f.args[0] if f.op == "pow" else f
            if base in bases or base.op == "pow" and f.op == "pow":
                break
            bases.add(base)
        else:
            return [f for f in factors if f is not E.ONE and
                    not (f.op == "pow" and f.args[1] is E.ZERO)]
    powers: dict = {}                   # base -> (exponent, the factor while it is alone)
    inner = None                        # (y^a)^k = y^(a*k), k an integer, when y is a base
    for f in factors:                   # here too: y^(a - 1)/(y^a)^2 = y^(-a - 1)
        if f.op == "pow" and f.args[0].op == "pow" and f.args[1].op == "num" and \
                f.args[1].value.denominator == 1:
            if inner is None:
                inner = {g.args[0] if g.op == "pow" else g for g in factors}
            if f.args[0].args[0] in inner:
                powers_of = f.args[0].args[0], mul_(s, [f.args[0].args[1], f.args[1]])
                f = Expr("pow", powers_of, f.shape)
        base, p = (f.args[0], f.args[1]) if f.op == "pow" else (f, E.ONE)
        got = powers.get(base)
        if got is not None:
            if s:
                s.note("fold constants")
            powers[base] = (add_(s, [got[0], p]), None)
        else:
            powers[base] = (p, f if s is not None else None)
    # numbers are interned: 1 and 0 are E.ONE and E.ZERO themselves (a test per factor)
    one, zero = E.ONE, E.ZERO
    out = [f or (b if p is one else pow_(s, b, p)) for b, (p, f) in powers.items()
           if p is not zero]
    return [f for f in out if f is not one]


def _sort_key(s, f: Expr) -> tuple:
    got = s.sort_keys.get(f)
    if got is None:
        got = s.sort_keys[f] = (0 if f.is_scalar else 1, order_key(f, s.keys))
    return got


def _grow(s, factors, shape, product) -> Expr | None:
    """mul_ of `product`, a product mul_ built, and a few new scalar factors that are not
    clusters (the chain rule's cos(u)*du, a factor a step), or None when the general way
    is needed. Nothing of the product is walked in Python: the new factors' bases are
    looked up in a set of the product's, moved along the growing chain, and each new
    factor is inserted at its place by bisection: O(log n) Python calls a step (the new
    product's operands are still copied, in C)."""
    if shape is not None and shape != product.shape:
        return None
    new = [f for f in factors if f is not product]
    if len(new) != len(factors) - 1 or any(
            f.op in _NOT_GROWN or A.is_cluster(f) or f.shape != SCALAR or _all_ones(f)
            for f in new):
        return None
    args = product.args
    if args[0] is E.ZERO or len(args) > 1 and args[1].op == "num":
        return None                             # a number mul_ would fold into another
    bases = s.bases[product]
    if bases is None:
        bases = {id(f.args[0] if f.op == "pow" else f) for f in args}
    ids = set(map(id, new))
    if len(ids) < len(new) or not bases.isdisjoint(ids):
        return None                             # x*x = x^2: the general way
    out = args
    start = 1 if args[0].op == "num" else 0     # the coefficient stays in front
    for f in new:
        key = _sort_key(s, f)
        i = bisect.bisect_left(out, key, start, key=lambda g: _sort_key(s, g))
        if i < len(out) and _sort_key(s, out[i]) == key:
            return None                         # a tie: the general way settles it
        out = out[:i] + (f,) + out[i:]
    # (its size from the product's: a sum over every factor at every step is quadratic)
    grown = Expr("mul", out, product.shape,
                 size=product.size + sum(f.size for f in new))
    bases.update(ids)
    s.bases[product] = None                     # its set moved on to the grown product
    s.bases[grown] = bases
    s.grown[grown] = (product, tuple(new))
    return grown


# factors _grow leaves to the general way (besides clusters and all-ones arrays): numbers
# fold, zeros and Kronecker products combine, a power may merge with the product's own,
# abs(u) and sign(u) merge (_abs_sign)
_NOT_GROWN = frozenset(("num", "zeros", "kron", "pow", "abs", "sign"))


def pow_(s, base, p) -> Expr:
    if p is E.ONE or base.op == "ones":        # (numbers are interned: 1 is E.ONE)
        return base
    if base.op == "eye" and p.op == "num" and p.value._numerator > 0:
        if s:
            s.note("fold constants")                # element by element: 0^p = 0, 1^p = 1
        return base
    got = _identity(s, "pow", [base, p])
    if got is not None:
        return got
    if base is E.ONE:                          # 1^p = 1, whatever p is
        if s:
            s.note("fold constants")
        return base
    if base.op == "sqrt" and p.op == "num" and p.value._denominator == 1 and \
            p.value._numerator % 2 == 0:
        if s:
            s.note(ID.SQRT_POWER.name)
        return pow_(s, base.args[0], _num(p.value / 2))
    if base.op == "zeros" and p.op == "num" and p.value._numerator > 0:
        return base
    if p is E.ZERO:
        return E.ONE if base.is_scalar else scale(Fraction(1), None, base.shape)
    if p.op != "num":
        return Expr("pow", (base, p), base.shape)
    if base.op == "num" and p.value.denominator == 1 \
            and abs(p.value) <= MAX_FOLDED_POWER and (base.value != 0 or p.value > 0) \
            and max(abs(base.value.numerator), base.value.denominator).bit_length() \
            * abs(p.value) <= MAX_FOLDED_BITS:
        if s:
            s.note("fold constants")
        return _num(base.value ** int(p.value))
    if base.op == "num" and 1 < p.value._denominator <= MAX_ROOT:
        root = _exact_root(base.value, p.value._denominator)     # 4^0.5 = 2, 8^(2/3) = 4
        if root is not None:
            if s:
                s.note("fold constants")
            return pow_(s, root, _num(p.value._numerator))
    if base.op == "pow" and base.args[1].op == "num" and p.value._denominator == 1:
        return pow_(s, base.args[0], _num(base.args[1].value * p.value))
    if base.op == "mul" and p.value._denominator == 1 and base.is_scalar:
        return mul_(s, [pow_(s, f, p) for f in base.args])
    return Expr("pow", (base, p), base.shape)


def _exact_root(v: Fraction, q: int) -> Expr | None:
    """The number v^(1/q) when it is rational (v ≥ 0, small), else None."""
    if v < 0 or max(v.numerator, v.denominator).bit_length() > MAX_FOLDED_BITS:
        return None
    parts = []
    for x in (v.numerator, v.denominator):
        r = round(x ** (1 / q))
        r = next((c for c in (r - 1, r, r + 1) if c >= 0 and c ** q == x), None)
        if r is None:
            return None
        parts.append(r)
    return _num(Fraction(parts[0], parts[1]))


def _t_leaf(s, a) -> Expr | None:
    """aᵀ when it needs no product rebuilt: a scalar, a symmetric or diagonal matrix, bᵀ,
    a commutation matrix, a Kronecker product."""
    if a.op == "commutation":
        return _commutation_T(s, a)
    if a.op == "kron":
        return _kron(s, T_(s, a.args[0]), T_(s, a.args[1]))
    symmetric = a.op == "var" and a.value == "symmetric"      # (is_symmetric, inline)
    if a.is_scalar or a.op in ("eye", "diag") and a.is_matrix or symmetric or \
            a.op == "inv" and a.args[0].is_symmetric:
        if symmetric and s:
            s.note("transpose rules")
        return a
    if a.op == "matmul" and _mirrored(a) or a.op == "inv" and a.args[0].op == "matmul" and \
            _mirrored(a.args[0]):
        if s:
            s.note("transpose rules")       # X'@X, A@S@A' and their inverses are symmetric
        return a
    if a.op == "mul" and a.is_matrix and any(f.op == "eye" for f in a.args):
        if s:
            s.note("transpose rules")       # X*eye(n) is diagonal: (X*I)' = X'*I = X*I
        return a
    if a.op == "T":
        if s:
            s.note("transpose rules")
        return a.args[0]
    if a.op == "zeros":
        return E.zeros((a.shape[1], a.shape[0]))
    return None


def _mirrored(a: Expr) -> bool:
    """A product that reads the same transposed — X'@X, A@B@A', A'@S@A with S symmetric
    or diagonal: a symmetric matrix (one level: the middle factor is not walked)."""
    c = a.args
    k = len(c)
    for i in range(k // 2):
        p, q = c[i], c[k - 1 - i]
        if not (p.op == "T" and p.args[0] is q or q.op == "T" and q.args[0] is p):
            return False
    if k % 2:
        m = c[k // 2]
        return m.is_symmetric or m.op in ("eye", "diag") and m.is_matrix
    return True


def _t_one(s, a, levels: int = 2) -> Expr:
    """aᵀ, pushed through products and sums `levels` deep: (AB)ᵀ = BᵀAᵀ, (cA)ᵀ = cAᵀ."""
    got = _t_leaf(s, a)
    if got is not None:
        return got
    if a.op == "matmul":
        if s:
            s.note("transpose rules")
        return matmul_(s, [T_(s, x, levels - 1) if levels else _t_leaf(s, x) or
                           Expr("T", (x,), (x.shape[1], x.shape[0])) for x in reversed(a.args)])
    if a.op == "mul":
        scalars = [f for f in a.args if f.is_scalar]
        others = [f for f in a.args if not f.is_scalar]
        if scalars and len(others) > 1:                 # (c*A*B)ᵀ = c*(A*B)ᵀ
            return mul_(s, scalars + [Expr("T", (Expr("mul", tuple(others), a.shape),),
                                           (a.shape[1], a.shape[0]))])
        if len(others) == 1:
            return mul_(s, scalars + [T_(s, others[0], levels - 1) if levels else
                                      _t_leaf(s, others[0]) or Expr(
                                          "T", (others[0],), (others[0].shape[1], others[0].shape[0]))])
    if a.op == "inv" and levels > 0:                    # inv(M)' = inv(M'), taken when M'
        said, traced = (len(s.fired), len(s.trail)) if s else (0, 0)    # sheds a transpose:
        inner = T_(s, a.args[0], levels - 1)            # inv(eye(n) + A')' = inv(eye(n) + A)
        if inner.op != "T":
            if s:
                s.note("transpose rules")
            return Expr("inv", (inner,), (a.shape[1], a.shape[0]))
        if s:
            del s.fired[said:]
            del s.trail[traced:]
            s.noted = traced
    return Expr("T", (a,), (a.shape[1], a.shape[0]))


def T_(s, a, levels: int = 2) -> Expr:
    """aᵀ with the transpose pushed into sums and products, a bounded number of levels (the
    operands are already simplified; no recursion in the depth of the tree)."""
    if a.op == "add" and a.is_matrix:        # (A + B)ᵀ = Aᵀ + Bᵀ; vectors keep (x - y)ᵀ
        said, traced = (len(s.fired), len(s.trail)) if s else (0, 0)
        pushed = add_(s, [_t_one(s, t, levels) for t in a.args])
        if s is None or pushed.op != "add" or \
                A.tokens(pushed, s.tokens) <= A.tokens(a, s.tokens) + 1:
            return pushed
        del s.fired[said:]                   # not taken: (W@X - N)' is shorter than (W@X)' - N'
        del s.trail[traced:]
        s.noted = traced
        return Expr("T", (a,), (a.shape[1], a.shape[0]))
    return _t_one(s, a, levels)


def _split_scalars(x: Expr):
    """(scalar factors, the non-scalar rest) of one operand of @."""
    if x.is_scalar:
        return [x], None
    if x.op == "mul":
        sc = [f for f in x.args if f.is_scalar]
        other = [f for f in x.args if not f.is_scalar]
        if sc:
            return sc, other[0] if len(other) == 1 else Expr("mul", tuple(other), x.shape)
    return [], x


def matmul_(s, args) -> Expr:
    # An operand that is itself a simplified product is a run whose inner pairs are final:
    # only the pairs where runs meet are tried, and runs are copied whole, never walked,
    # so a chain built one product at a time costs linear time in its length.
    runs: list[tuple] = []                  # (factors, final?)
    scalars: list = []
    several = len(args) > 1
    many = several or args[0].op == "matmul"
    shape = (args[0].shape[0], args[-1].shape[1])
    if s and several and "matmul" in map(_OP, args):
        s.note("associativity")
    for a in args:
        if a.op == "matmul" and s is not None and s.memo.get(a) is a:
            runs.append((a.args, True))
            continue
        # (_factors of anything but a product or a transpose is None)
        inside = _factors(a) if a.op == "matmul" or several and a.op == "T" else None
        for f in inside or (a,):             # (B@A)' inside a longer chain: A'@B' again
            sc, rest = _split_scalars(f) if many and (f.is_scalar or f.op == "mul") else \
                ([], f)
            if sc and s:
                s.note("scalars out of products")
            scalars.extend(sc)
            if rest is None:
                continue
            if rest.op == "zeros":
                return E.zeros(shape)
            if rest.op == "eye" and many:
                if s:
                    s.note("identity")
                continue
            if rest.op == "matmul" and rest is not f:    # x@(c*(x'@A)): c out, and x'@A
                if s:                                    # joins the chain
                    s.note("associativity")
                runs.extend(((g,), False) for g in rest.args)
                continue
            runs.append(((rest,), False))
    runs = _embeddings(s, _pairwise(s, runs))
    if shape[1] == "1" and shape[0] != "1":
        # diag(a)@M@v = a*(M@v): a diagonal matrix applied to a column is a Hadamard
        # product (a final run that is itself a column has had this done)
        at = next(((k, i) for k, (r, final) in enumerate(runs)
                   if not (final and r[-1].shape[1] == "1")
                   for i, m in enumerate(r) if m.op == "diag" and m.args[0].is_column
                   and (k, i) != (len(runs) - 1, len(r) - 1)), None)
        if at is not None:
            if s:
                s.note("diag(a)v = a⊗v")
            k, i = at
            before = [f for r, _ in runs[:k] for f in r] + list(runs[k][0][:i])
            tail = matmul_(s, list(runs[k][0][i + 1:]) + [f for r, _ in runs[k + 1:] for f in r])
            runs = [(tuple(before) + (mul_(s, [runs[k][0][i].args[0], tail]),), False)]
    # (two runs, a chain and what extends it, are joined by one copy in C)
    chain = runs[0][0] + runs[1][0] if len(runs) == 2 else \
        tuple(itertools.chain.from_iterable(r for r, _ in runs))
    if not chain:
        core = E.eye(shape[0]) if shape != SCALAR else E.ONE
    elif len(chain) == 1:
        core = chain[0]
    elif all(map("T".__eq__, map(_OP, chain))):    # A'@B' = (B@A)': one transpose, not k
        if s:
            s.note("transpose rules")
        inner = tuple(m.args[0] for m in reversed(chain))
        core = Expr("T", (Expr("matmul", inner, (inner[0].shape[0], inner[-1].shape[1])),),
                    (chain[0].shape[0], chain[-1].shape[1]))
    else:
        core = Expr("matmul", chain, (chain[0].shape[0], chain[-1].shape[1]))
    if core.op == "mul" or scalars:
        return mul_(s, scalars + [core])
    return core


def _pairwise(s, runs):
    """Rewrite adjacent pairs of an @ chain until none applies, in one pass with a stack:
    a rewritten pair goes back to be tried with its left neighbour. Pairs inside a final
    run are not tried."""
    out: list = []
    pending = list(reversed(runs))
    while pending:
        run, final = pending.pop()
        if not run:                                # a pair that cancelled: K@K' = I
            continue
        if out:
            left, left_final = out[-1]
            new = _pair(s, left[-1], run[0])
            if new is not None:
                out.pop()
                if len(left) > 1:                  # its pairs were tried already
                    out.append((left[:-1], left_final))
                if len(run) > 1:
                    pending.append((run[1:], final))
                pending.append((tuple(new), False))
                continue
        out.append((run, final))
    return out


def _is_ones_row(x):
    return x.op == "T" and x.args[0].op == "ones"


def _inverse_pair(a, b) -> bool:
    """A@inv(A) or inv(A)@A (or their transposes, inv(A)'@A'): the identity."""
    if a.op == "T" and b.op == "T":
        a, b = a.args[0], b.args[0]
    return (b.op == "inv" and b.args[0] is a) or (a.op == "inv" and a.args[0] is b)


# The operators a law below may start from, on the left of a pair and on the right (with
# a scalar on either side): most pairs (A@x, W@h) have none and are answered at once.
_PAIR_LEFT = frozenset(("inv", "T", "commutation", "diag", "kron", "add"))
_PAIR_RIGHT = frozenset(("inv", "commutation", "diag", "ones", "kron", "add"))


def _pair(s, a, b):
    if a.op not in _PAIR_LEFT and b.op not in _PAIR_RIGHT and not a.is_scalar and \
            not b.is_scalar:
        return None
    note = s.note if s else (lambda r: None)
    if "inv" in (a.op, b.op) or a.op == b.op == "T" and _inverse_pair(a, b):
        if _inverse_pair(a, b):
            note("inverse laws")
            return []
    if "commutation" in (a.op, b.op):
        got = _commutation_pair(s, a, b)
        if got is not None:
            note("commutation laws")
            return got
    # (each law's cheapest test first: most pairs meet none of them)
    if b.op == "diag" and _is_ones_row(a) and b.args[0].is_column:
        note("1ᵀdiag(v) = vᵀ")
        return [T_(s, b.args[0])]
    if a.op == "diag" and a.args[0].is_column and b.op == "ones":
        note("1ᵀdiag(v) = vᵀ")
        return [a.args[0]]
    if a.op == "diag" and b.op == "diag" and a.args[0].is_column and b.args[0].is_column:
        note("diag(a)diag(b) = diag(a⊗b)")
        return [_diag(s, mul_(s, [a.args[0], b.args[0]]))]
    if a.op == "diag" and a.args[0].is_column and b.is_column:
        note("diag(a)v = a⊗v")
        return [mul_(s, [a.args[0], b])]
    if b.op == "diag" and a.is_row and b.args[0].is_column:
        note("diag(a)v = a⊗v")
        return [T_(s, mul_(s, [T_(s, a), b.args[0]]))]
    if a.op == "T" and a.args[0].op == "ones" and b.is_column:     # (_is_ones_row)
        note("1ᵀv = sum(v)")
        return [_func(s, Expr("sum", (b,), SCALAR), [b])]        # (1ᵀ1 = n)
    if b.op == "ones" and a.is_row:
        note("1ᵀv = sum(v)")
        v = T_(s, a)
        return [_func(s, Expr("sum", (v,), SCALAR), [v])]
    if a.op == "kron" and b.op == "kron" and a.args[0].shape[1] == b.args[0].shape[0] \
            and a.args[1].shape[1] == b.args[1].shape[0]:
        note("mixed product (A⊗B)(C⊗D) = AC⊗BD")
        return [_kron(s, matmul_(s, [a.args[0], b.args[0]]), matmul_(s, [a.args[1], b.args[1]]))]
    if a.op == "kron" and b.op == "kron":
        got = _unvec(s, a, b)
        if got is not None:
            note("unvec")
            return [got]
    if a.op == "T" and a.is_row and b.is_column:
        product = mul_(None, [a.args[0], b])             # u'v = sum(u*v) when u*v cancels
        if product.size < a.size + b.size - 1:
            note("fold constants")
            return [_func(s, Expr("sum", (product,), SCALAR), [product])]
    if a.is_scalar or b.is_scalar:
        return [mul_(s, [a, b])]
    if s and (b.op == "diag" and a.op == "add" or a.op == "diag" and b.op == "add"):
        return _distribute_diag(s, a, b)
    return None


def _unvec(s, a, b):
    """kron(eye(n), c*vec(M)')@kron(vec(eye(n)), eye(m)) = c*M' (M m×n): a gradient by a
    matrix read off its vec form's row (d/dX a'@vec(X) is unvec(a)'), when the row is a
    vec's transpose and scalars; and its transpose, kron(vec(eye(n))', eye(m))@kron(eye(n),
    c*vec(M)) = c*M. None otherwise."""
    if a.args[0].op == "eye":                       # kron(eye(n), row)@kron(vec(eye(n)), eye(m))
        (eye_n, w), (vec_eye, eye_m), turned = a.args, b.args, True
    else:                                           # kron(vec(eye(n))', eye(m))@kron(eye(n), column)
        (vec_eye, eye_m), (eye_n, w), turned = a.args, b.args, False
        if vec_eye.op != "T":
            return None
        vec_eye = vec_eye.args[0]
    if eye_n.op != "eye" or eye_m.op != "eye" or vec_eye.op != "vec" or \
            vec_eye.args[0] is not eye_n or not (w.is_row if turned else w.is_column):
        return None
    scalars: list = []
    for _ in range(2):                              # c*vec(M)', (c*vec(M))', c*vec(M)
        factors = w.args if w.op == "mul" else (w,)
        scalars += [f for f in factors if f.is_scalar]
        rest = [f for f in factors if not f.is_scalar]
        if len(rest) != 1:
            return None
        w = rest[0]
        if w.op != "T":
            break
        w = w.args[0]
    if w.op != "vec" or w.args[0].shape != (eye_m.shape[0], eye_n.shape[0]):
        return None
    m = T_(s, w.args[0]) if turned else w.args[0]
    return mul_(s, scalars + [m]) if scalars else m


def _distribute_diag(s, a, b):
    """(A + B)@diag(v) (or diag(v)@(A + B)) as A@diag(v) + B@diag(v) when diag(v) is taken
    into every term (I@diag(v) = diag(v), ones(n)'@diag(v) = v'), so that no product with
    it is left: the softmax Jacobian diag(s) - s@s' (CS231n), not (I/S - e@1'/S²)@diag(e).
    A term that keeps the diagonal leaves the product as it is, and the attempt's notes
    are taken back."""
    d, total, left = (a, b, True) if a.op == "diag" else (b, a, False)
    terms = total.args
    if any(t.shape != total.shape for t in terms) or s.distributing:
        return None     # a scalar spread over the sum (J, not 1); or a sum in a term (one level)
    said, traced = len(s.fired), len(s.trail)
    products = []
    s.distributing = True
    try:
        for t in terms:
            sc, rest = _split_scalars(t)
            core = matmul_(s, [d, rest] if left else [rest, d])
            if core.op == "matmul" and (core.args[0] if left else core.args[-1]) is d:
                del s.fired[said:]
                del s.trail[traced:]
                s.noted = traced
                return None
            products.append(mul_(s, sc + [core]) if sc else core)
    finally:
        s.distributing = False
    s.note("distribute a diagonal matrix")
    return [add_(s, products)]


def _identity(s, op, args):
    """The table's local identity for op (mcalc.identities), rebuilt canonically."""
    entry = ID.REWRITE_BY_OP.get(op)
    if entry is None or args[0].op not in entry[1]:
        return None
    got = entry[2](args)
    if got is None:
        return None
    if s:
        s.note(entry[0].name)
    if got.op == "exp" and got.args[0].op == "mul":
        return Expr("exp", (mul_(s, list(got.args[0].args)),), got.shape)
    return got


def _centered(a: Expr) -> bool:
    """a is c*(v - mean(v)): its sum and its mean are 0 (layer and batch norm's
    Jacobians)."""
    if a.op != "add" or len(a.args) != 2:
        return False
    (c1, r1), (c2, r2) = map(coeff_and_rest, a.args)
    if c1 != -c2 or r1 is None or r2 is None:
        return False
    return r2.op == "mean" and r2.args[0] is r1 or r1.op == "mean" and r1.args[0] is r2


def _func(s, e, args):
    f = e.op
    a = args[0]
    got = _identity(s, f, args)
    if got is not None:
        return got
    if f in ("sum", "tr") and (a.op == "zeros" or E.is_number(a, 0)):
        return E.ZERO
    if f == "sqrt" and a.op == "num":
        root = _exact_root(a.value, 2)                      # sqrt(4) = 2
        if root is not None:
            if s:
                s.note("fold constants")
            return root
    if a.op == "zeros" and f in _OF_ZERO:
        if s:
            s.note("fold constants")
        return _OF_ZERO[f](a)
    if f in ("vec", "dot") and any(x.op == "zeros" for x in args):
        if s:
            s.note("fold constants")                        # linear in each operand
        return E.zeros(e.shape)
    if a.op == "zeros" and f in _AT_ZERO:
        if s:
            s.note("fold constants")                        # f(0), element by element
        return filled(_AT_ZERO[f], e.shape)
    if a.op == "vec" and f in ELEMENTWISE_UNARY:
        if s:                                   # f(vec(A)) = vec(f(A)): one shape less
            s.note("vec of an element-wise function")
        inner = a.args[0]
        fa = _func(s, Expr(f, (inner,), inner.shape), [inner])
        return _func(s, Expr("vec", (fa,), a.shape), [fa])
    if f in ("sum", "mean") and _centered(a):
        if s:
            s.note("centred sums vanish")
        return E.ZERO
    if f == "sum":
        if a.op == "mul" and len(a.args) == 2 and (a.is_column or a.is_row) and \
                a.args[0].shape == a.args[1].shape:
            if s:
                s.note("sum(u⊗v) = uᵀv")         # x'@A@x, not sum(x*(A@x))
            u, v = a.args if a.is_column else (T_(s, a.args[0]), T_(s, a.args[1]))
            return matmul_(s, [T_(s, u), v])
        if a.op == "ones":
            return E.dim(a.shape[0]) if not a.shape[0].isdigit() else _num(int(a.shape[0]))
        if a.op == "mul":
            sc = [x for x in a.args if x.is_scalar]
            if sc and len(sc) < len(a.args):
                return mul_(s, sc + [Expr("sum", (mul_(s, [x for x in a.args
                                                            if not x.is_scalar]),), SCALAR)])
    if f == "vec" and _all_ones(a):
        if s:
            s.note("diag and vec are linear")
        return E.ones(e.shape[0])                       # vec(ones(m)@ones(n)') = ones(m*n)
    if f == "tr" and a.op == "eye":
        return E.dim(a.shape[0]) if not a.shape[0].isdigit() else _num(int(a.shape[0]))
    if f == "diag" and a.op == "T" and a.is_matrix:
        if s:
            s.note("transpose rules")
        return Expr("diag", a.args, e.shape)             # the diagonal of Mᵀ is M's
    if f == "diag" and a.op == "ones":
        return E.eye(a.shape[0])
    if f == "diag" and a.is_matrix:                     # the diagonal of c*diag(v) is c*v
        parts = a.args if a.op == "add" else (a,)
        diagonals = [_diagonal(s, t) for t in parts]
        if None not in diagonals:                       # (a sum: every term has one)
            if s:
                s.note("diagonal matrices")
            return diagonals[0] if len(diagonals) == 1 else add_(s, diagonals)
    if f == "norm" and a.op == "diag" and a.args[0].is_column:
        if s:
            s.note("diagonal matrices")
        return Expr("norm", a.args, SCALAR)
    if f in ("tr", "det", "logdet") and a.op == "T":
        if s:
            s.note("transpose rules")                   # tr(A') = tr(A), det(A') = det(A)
        return _func(s, Expr(f, a.args, SCALAR), a.args)
    if f == "inv" and a.op == "inv":
        if s:
            s.note("inverse laws")
        return a.args[0]
    if f == "diag" and a.is_column and a.op == "mul":
        sc = [x for x in a.args if x.is_scalar]
        other = [x for x in a.args if not x.is_scalar]
        if sc and len(other) == 1:
            return mul_(s, sc + [_diag(s, other[0])])
    if f == "exp" and E.is_number(a, 0):
        return E.ONE
    if f == "log" and E.is_number(a, 1):
        return E.ZERO
    if f == "sign" and a.op == "num":
        return _num((a.value > 0) - (a.value < 0))
    return _rebuild(s, e, args)


_AT_ZERO = {"diag": 0, "sin": 0, "tan": 0, "tanh": 0, "relu": 0, "abs": 0, "sign": 0, "sqrt": 0,
            "cos": 1, "exp": 1, "sigmoid": Fraction(1, 2)}


def _count(d: str) -> Expr:
    """A dimension ("n", "3", "m*n") as a scalar."""
    parts = [_num(int(p)) if p.isdigit() else E.dim(p) for p in d.split("*")]
    return parts[0] if len(parts) == 1 else mul_(None, parts)


# reductions and vector functions of a zero array
_OF_ZERO = {
    "mean": lambda a: E.ZERO, "norm": lambda a: E.ZERO, "det": lambda a: E.ZERO,
    "logsumexp": lambda a: Expr("log", (_count_all(a.shape),), SCALAR),
    "softmax": lambda a: mul_(None, [Expr("pow", (_count(a.shape[0]), _num(-1)), SCALAR),
                                     E.ones(a.shape[0])], a.shape),
}


def _count_all(shape) -> Expr:
    return mul_(None, [_count(d) for d in shape if d != "1"] or [E.ONE])


def filled(value, shape) -> Expr:
    """An array of one value that prints with its shape: 0*ones(n) (the zeros leaf), c*ones(n),
    c*ones(m)@ones(n)'."""
    if value == 0 or shape == SCALAR:
        return E.zeros(shape) if value == 0 else _num(value)
    ones = E.ones(shape[0]) if shape[1] == "1" else \
        Expr("T", (E.ones(shape[1]),), shape) if shape[0] == "1" else \
        Expr("matmul", (E.ones(shape[0]), Expr("T", (E.ones(shape[1]),), ("1", shape[1]))), shape)
    return ones if value == 1 else Expr("mul", (_num(value), ones), shape)


def _indicator(s, e, args):
    a, b = args
    if a is b or a.op == "num" and b.op == "num":       # (u < u is 0, u <= u is 1)
        v = e.op in ("ge", "le") if a is b else \
            {"gt": a.value > b.value, "ge": a.value >= b.value, "lt": a.value < b.value,
             "le": a.value <= b.value}[e.op]
        if s:
            s.note("fold constants")
        return _num(int(v)) if e.is_scalar else scale(Fraction(int(v)), None, e.shape)
    return _rebuild(s, e, args)


def _extremum(s, e, args):
    if args[0] is args[1]:                              # max(u, u) = min(u, u) = u
        if s:
            s.note("fold constants")
        return args[0]
    return _rebuild(s, e, args)


# ---- commutation matrices (Magnus & Neudecker §3.7) --------------------------------
# K = commutation(m, n) is the mn×mn permutation with K@vec(A) = vec(A') for an m×n A.
# Its laws move it to the left of Kronecker products, where two of them cancel: so
# K_{p,m}@kron(A, B)@K_{n,q} becomes kron(B, A), and d/dX X'@X the textbook
# (I + K_{n,n})(I ⊗ X').

def _commutation_T(s, k):
    if s:
        s.note("commutation laws")
    return E.commutation(k.value[1], k.value[0])


def _commutation_pair(s, a, b):
    """The law for a@b when one of them is a commutation matrix, or None."""
    if a.op == "commutation" and b.op == "commutation" and a.value == b.value[::-1]:
        return []                                                  # K_{m,n} K_{n,m} = I
    if a.op == "kron" and b.op == "commutation":
        x, y = a.args
        if b.value == (x.shape[1], y.shape[1]):
            k = E.commutation(x.shape[0], y.shape[0])
            swapped = Expr("kron", (y, x), (a.shape[0], b.shape[1]))
            return [swapped] if k.op == "eye" else [k, swapped]
    if a.op == "commutation" and b.op == "vec" and b.args[0].shape == a.value:
        return [Expr("vec", (T_(s, b.args[0]),), b.shape)]
    if b.op == "commutation" and a.op == "T" and a.args[0].op == "vec" \
            and a.args[0].args[0].shape == b.value[::-1]:                # vec(A)'K = vec(A')'
        inner = Expr("vec", (T_(s, a.args[0].args[0]),), a.args[0].shape)
        return [Expr("T", (inner,), a.shape)]
    return None


# ∂vec(diag(v))/∂v = diag(vec(I))(1 ⊗ I) (mcalc.rules) meets, in a chain rule, the Jacobian
# of what uses diag(v): (uᵀ ⊗ I) diag(vec(M)) (1 ⊗ I) is diag(M u), entry a being
# Σ_b u_b M[a, b]; its transpose (a denominator-layout chain) is the same diagonal matrix.

def _embeddings(s, runs):
    """Laws of three neighbours in an @ chain: the embedding's, and 1ᵀM1 = sum(M). Only
    windows that hold a factor of a run that is not final are tried (a final run's own
    windows were tried when it was built); after a law fires the chain is paired again
    and every window tried again, until none fires."""
    pos = 0
    for r, _ in runs:
        pos += len(r)
    if pos < 3:                                 # (most chains: two factors)
        return runs
    spans, pos = [], 0
    for r, final in runs:
        if not final:
            spans.append(range(max(0, pos - 2), pos + len(r)))
        pos += len(r)
    if not spans:
        return runs
    windows = sorted({i for span in spans for i in span if i <= pos - 3})
    if not windows:
        return runs
    # the chain is copied only once a law fires: a long final run is not walked
    ends = list(itertools.accumulate(len(r) for r, _ in runs))

    def at(i):
        k = bisect.bisect_right(ends, i)
        return runs[k][0][i - ends[k] + len(runs[k][0])]

    chain = None
    fired = False
    while windows:
        for i in windows:
            a, m, b = chain[i:i + 3] if chain is not None else (at(i), at(i + 1), at(i + 2))
            if _is_ones_row(a) and b.op == "ones" and m.is_matrix:
                got, law = Expr("sum", (m.args[0] if m.op == "T" else m,), SCALAR), "1ᵀv = sum(v)"
            else:
                got, law = _embedding(s, a, m, b), "diagonal embedding"
            if got is not None:
                if s:
                    s.note(law)
                if chain is None:
                    chain = list(itertools.chain.from_iterable(r for r, _ in runs))
                chain = [f for r, _ in _pairwise(s, [((f,), False) for f in
                                                     chain[:i] + [got] + chain[i + 3:]])
                         for f in r]
                windows, fired = list(range(len(chain) - 2)), True
                break
        else:
            break
    return [(tuple(chain), False)] if fired else runs


def _embedding(s, a, m, b):
    if m.op != "diag" or not m.args[0].is_column:
        return None
    n = a.shape[0] if a.op != "T" else b.shape[1]
    spread = Expr("kron", (E.ones(n), E.eye(n)), (dim_mul(n, n), n))      # (1 ⊗ I)
    if b is spread:
        pick = a
    elif a.op == "T" and a.args[0] is spread and b.op == "T":
        pick = b.args[0]
    else:
        return None
    if pick.op != "kron" or pick.args[1] is not E.eye(n) or not pick.args[0].is_row:
        return None
    w = m.args[0]
    if w.op == "pow" and w.args[0].op == "vec" and w.args[0].args[0].op == "eye" and \
            w.args[1].op == "num" and w.args[1].value > 0:
        w = w.args[0]                                   # vec(I)^p = vec(I): 0/1 entries
    factors = w.args if w.op == "mul" else (w,)       # vec(A)*vec(B) = vec(A*B)
    if not all(f.is_scalar or f.op == "vec" and f.args[0].shape == (n, n) for f in factors):
        return None
    inner = [f if f.is_scalar else f.args[0] for f in factors]
    column = matmul_(s, [mul_(s, inner) if len(inner) > 1 else inner[0], T_(s, pick.args[0])])
    return _func(s, Expr("diag", (column,), (n, n)), [column])


# ---- Kronecker products (MC §10.2) -------------------------------------------------

def _kron(s, a, b) -> Expr:
    """kron(a, b), a scalar operand a plain factor."""
    if a.is_scalar or b.is_scalar:
        if s:
            s.note("Kronecker laws")
        return mul_(s, [a, b])
    shape = (dim_mul(a.shape[0], b.shape[0]), dim_mul(a.shape[1], b.shape[1]))
    if a.op == b.op == "eye":
        if s:
            s.note("Kronecker laws")
        return E.eye(shape[0])
    if a.is_row and b.is_column or a.is_column and b.is_row:
        if s:                                   # kron(u', v) = kron(v, u') = v@u'
            s.note("Kronecker laws")
        return matmul_(s, [b, a] if a.is_row else [a, b])
    return Expr("kron", (a, b), shape)


def _kron_hadamard(s, factors):
    """(A ⊗ B) * (C ⊗ D) = (A * C) ⊗ (B * D) for operands of equal shapes, in a product's
    factors."""
    out: list[Expr] = []
    where: dict = {}            # operand shapes -> index of the first such kron in out
    for f in factors:
        if f.op != "kron":
            out.append(f)
            continue
        shapes = (f.args[0].shape, f.args[1].shape)
        partner = where.get(shapes)
        if partner is None:
            where[shapes] = len(out)
            out.append(f)
            continue
        if s:
            s.note("Kronecker laws")
        g = out[partner]
        out[partner] = got = _kron(s, mul_(s, [g.args[0], f.args[0]]),
                                   mul_(s, [g.args[1], f.args[1]]))
        if got.op != "kron" or (got.args[0].shape, got.args[1].shape) != shapes:
            del where[shapes]           # no longer a partner for a later kron
    return out


class _Constructors(dict):
    """op -> constructor(simplifier, node, operands); an op without one is rebuilt as it is."""
    __slots__ = ()

    def __missing__(self, op):
        return _rebuild


_BUILD = _Constructors({
    "add": lambda s, e, a: add_(s, a, e.shape),
    "mul": lambda s, e, a: mul_(s, a, e.shape),
    "pow": lambda s, e, a: pow_(s, a[0], a[1]),
    "T": lambda s, e, a: T_(s, a[0]),
    "matmul": lambda s, e, a: matmul_(s, a),
    **{f: _func for f in ("sum", "tr", "log", "vec", "dot", "inv", "logdet") + tuple(_AT_ZERO)
       + tuple(_OF_ZERO)},
    **{f: _indicator for f in ("gt", "ge", "lt", "le")},
    "max": _extremum, "min": _extremum,
    "kron": lambda s, e, a: E.zeros(e.shape) if any(x.op == "zeros" for x in a) else _kron(s, *a),
})


# ---- textbook form of an element-wise cluster (mcalc.algebra) -------------------------------

_RELU_STEP = frozenset(("relu", "gt"))
_CLUSTER_OPS = frozenset(("add", "mul", "pow"))    # (a power of any exponent: the long way)


def _worth(s, e: Expr) -> int:
    """What the algebra may shorten in a cluster: 0 nothing (a product of powers, already
    canonical), 1 only by taking common factors out (a sum of such products), 2 anything:
    a quotient by a sum or by sum(exp(x)), a sum times a number alone or times another sum
    or inside a sum, a power of a sum inside a sum, two quotients in a sum.
    A cluster of level 0 is remembered (in s.plain, with which of relu and > it holds):
    a product _grow built from one, its new factors not clusters, is of level 0 too unless
    relu meets its step, so a growing product is not walked again."""
    g = s.grown.get(e)
    if g is not None and g[0] in s.plain:
        held = s.plain[g[0]].union(f.op for f in g[1] if f.op in _RELU_STEP)
        if held == _RELU_STEP:
            return 2
        s.plain[e] = held
        return 0
    if e.op == "mul":
        ops = set(map(_OP, e.args))
        if "pow" in ops and "add" not in ops and "mul" not in ops:
            # a product of atoms and numeric powers of atoms (z/(2*y)): the walk below
            # would find level 0 unless a power is 1/sum(exp(u)); its atoms' ops tell
            for f in e.args:
                if f.op == "pow":
                    base, p = f.args
                    op = base.op
                    if p.op != "num" or op == "add" or op == "mul" or \
                            op == "pow" and base.args[1].op == "num":
                        break                   # not an atom's power: the walk
                    if op == "sum" and p.value._numerator < 0 and base.args[0].op == "exp":
                        return 2
                    ops.add(op)
            else:
                ops.discard("pow")
        if ops.isdisjoint(_CLUSTER_OPS):        # a product of atoms: its factors' ops tell
            held = _RELU_STEP.intersection(ops)
            if held == _RELU_STEP:
                return 2
            s.plain[e] = held
            return 0
    # (loops written out, clusters tested inline, a Fraction's sign by its slot: this walks
    # every cluster the simplifier meets)
    stack, seen, level, quotients, atoms = [(e, None)], set(), 0, 0, set()
    while stack:
        n, parent = stack.pop()
        op = n.op
        if op == "pow":
            base, p = n.args
            negative = p.value._numerator < 0
            if negative and (base.op == "add" or base.op == "sum" and base.args[0].op == "exp"):
                return 2
            if base.op == "add" and parent == "add":
                return 2
            if negative and parent == "add":
                quotients += 1
        elif op == "mul":
            sums, quotient = 0, False
            for f in n.args:
                if f.op == "add":
                    sums += 1
                    if _negative_first(f):  # -y*(-y - 1): the sign may come out, y*(y + 1)
                        return 2
                elif f.op == "pow":
                    if f.args[0].op == "add":
                        sums += 1
                    k = f.args[1]
                    quotient = quotient or k.op == "num" and k.value._numerator < 0
            if quotient and parent == "add":
                quotients += 1
            if sums > 1 or sums and (n.args[0].op == "num" and len(n.args) == 2  # 9*(x + 1)
                                     or parent == "add"):
                return 2
        else:
            level = 1
        if quotients > 1:
            return 2
        for a in n.args:
            aop = a.op
            if aop == "add" or aop == "mul" or aop == "pow" and a.args[1].op == "num":
                if a not in seen:
                    seen.add(a)
                    stack.append((a, op))
            else:
                atoms.add(aop)
                if (aop == "ones" or aop == "matmul") and "add" in (op, parent) \
                        and A.all_ones(a):
                    return 2                    # an all-ones array is 1 here: J - 1 = 0
    if _RELU_STEP <= atoms:
        return 2
    if not level:
        s.plain[e] = _RELU_STEP.intersection(atoms)
    return level


def _negative_first(t: Expr) -> bool:
    """A sum whose first term is negative: -y - 1, -2*x + z (add_ writes a positive term
    first when there is one, so this is a sum of negative terms or one of its kind)."""
    f = t.args[0]
    c = f if f.op == "num" else f.args[0] if f.op == "mul" and f.args[0].op == "num" else None
    return c is not None and c.value._numerator < 0


def _nothing_in_common(e: Expr) -> bool:
    """A sum of products whose coefficients have no common divisor and whose terms share
    no factor, or a product of atoms and such sums: taking common factors out cannot
    shorten it (exp(x)*(2*x + x^2) can: x*exp(x)*(x + 2))."""
    if e.op == "mul":
        return all(_nothing_in_common(f) for f in e.args if f.op == "add")
    if e.op != "add":
        return True
    divisor, fractions, common = 0, False, None
    for t in e.args:
        c, rest = coeff_and_rest(t)
        divisor = gcd(divisor, c._numerator)
        fractions = fractions or c._denominator != 1
        factors = set() if rest is None else {
            f.args[0] if f.op == "pow" and f.args[1].op == "num" else f      # x^2, x: x
            for f in (rest.args if rest.op == "mul" else (rest,))}
        common = factors if common is None else common & factors
    return divisor == 1 and not fractions and not common


def _kept_as_is(s, e: Expr, level: int) -> bool:
    """e is a sum of whole multiples of products of atoms (level 1), or c times such a
    sum with no common divisor, c a whole number > 1 (level 2: 9*(x/9 + 1) is shorter
    expanded), and no form of it is shorter, so that _textbook need not build them:
    - the atoms are to positive whole powers, no atom is in every term, and the sum has
      nothing else worth the algebra's while (its _worth is 1): the forms are e expanded
      and e with the whole numbers' divisor g out (c, or the sum's own), up to the order of
      terms, and no polynomial of degree 2 or more in one atom (no rational roots);
    - no more negative terms than positive, and a positive one first (add_ puts one first,
      but a term _factor_common made comes last): every form of the sum starts so too, and
      with g out it keeps its signs (g, not -g);
    - u, the terms ±g times atoms, decide: with g out each of them loses its "g*" (2
      tokens) and the sum gains "g*": a sum is kept when u ≤ 1, c*(sum) when u ≥ 1.
    Then _textbook keeps e (a form that ties loses), noting no rule."""
    if level == 1 and e.op == "add":
        total = e
    elif level == 2 and e.op == "mul" and len(e.args) == 2 and e.args[0].op == "num" and \
            e.args[1].op == "add":
        c = e.args[0].value
        if c._denominator != 1 or c._numerator < 2:
            return False
        total = e.args[1]
    else:
        return False
    divisor, balance, common, atoms, degree, coefficients = 0, 0, None, set(), 1, []
    for t in total.args:
        k, rest = coeff_and_rest(t)
        if k._denominator != 1:
            return False
        divisor = gcd(divisor, k._numerator)
        balance += 1 if k._numerator < 0 else -1
        factors = set()
        if rest is not None:
            coefficients.append(k._numerator)
            for f in rest.args if rest.op == "mul" else (rest,):
                if f.op == "pow":
                    p = f.args[1]
                    if p.op != "num" or p.value._denominator != 1 or p.value._numerator < 1:
                        return False
                    degree = max(degree, p.value._numerator)
                    f = f.args[0]
                if f.op in _NOT_ATOMS:
                    return False
                factors.add(f)
        common = factors if common is None else common & factors
        atoms |= factors
    if common or balance > 0 or _coefficient(total.args[0])._numerator < 0 or \
            len(atoms) < 2 and degree > 1:
        return False
    units = coefficients.count(divisor) + coefficients.count(-divisor)
    if total is e:
        return divisor > 1 and units <= 1     # (1: nothing in common, answered before)
    return divisor == 1 and units >= 1 and _worth(s, total) == 1


# what _kept_as_is does not take for an atom of a term: clusters and numbers, and sign(u),
# which a product _grow built may hold next to u (u*sign(u), abs(u) in textbook form)
_NOT_ATOMS = frozenset(("add", "mul", "pow", "num", "zeros", "sign"))


def _sigmoid_arg(w: Expr, flip: bool):
    """(u, True) for w = -u, else (w, False): sigmoid's argument written without a minus;
    flipped, (-w, True) or (w, False) the other way round."""
    c, rest = coeff_and_rest(w)
    if (c < 0) != flip and rest is not None:
        return scale(-c, rest, rest.shape), True
    return w, False


def _textbook(s, e: Expr, level: int) -> Expr:
    """The shortest of e as it is, factored and expanded, after common denominators,
    cancelling and the table's product identities (logistic, softmax); `level` is e's
    _worth."""
    if not level or level == 1 and _nothing_in_common(e) or _kept_as_is(s, e, level):
        return e
    atoms = A.Atoms()
    try:
        t = A.to_poly(e, atoms, s.too_big)
        content = A.content(t) if level == 1 and t else None      # (t's, asked once)
        if level == 1 and (not t or content == (1, ())):
            return e                        # a sum of products with nothing in common
        best, best_len, best_rules = e, A.tokens(e, s.tokens), ()
        options = [((), t)]
        for identity, apply in ((ID.SOFTMAX, A.softmax_terms), (ID.RELU_STEP, A.relu_step_terms)):
            got = apply(options[0][1], atoms)          # never longer: taken when they apply
            if got is not None:
                options = [(options[0][0] + (identity.name,), got)]
                best_len = float("inf")
        for flip in (False, True):
            try:
                logistic = A.logistic_terms(options[0][1], atoms, _sigmoid_arg, flip)
            except A.TooBig:
                continue
            if logistic is None:
                break                           # no 1 + exp(w) in a term: for either sign
            options.append((options[0][0] + (ID.LOGISTIC.name,), logistic))
    except A.TooBig:
        return e
    first, number_out = options[0][1], True
    if first is not t:
        content = None                      # (first's content, once it is asked)
    writer = _writer(s, atoms)               # (one for every form: each atom built once)
    for rules, poly in options:
        try:
            n, den = A.combine(poly, atoms)
            same = poly is first and not den and list(n.items()) == list(first.items())
            if same and content is None:
                content = A.content(first)
            forms = list(_forms(s, n, den, writer, e.shape, content if same else None))
        except A.TooBig:
            continue
        if same and not content[1]:
            # its own numerator, with no common monomial: its form with the number out
            # (_number_out) is, call for call, the common-factor form just built (as many
            # tokens, so it cannot win, and the same rewrites noted)
            number_out = False
        for form, cand in forms:
            k = A.tokens(cand, s.tokens)
            if k < best_len:
                best, best_len = cand, k
                best_rules = rules + (("common denominator",) if den else ()) + \
                    ((form,) if form else ())
    try:
        cand = _number_out(s, first, writer, e.shape, content) if number_out else None
    except A.TooBig:
        cand = None
    if cand is not None and A.tokens(cand, s.tokens) < best_len:
        best, best_rules = cand, options[0][0] + ("factor out",)
    for r in best_rules:
        s.note(r)
    return best


def _writer(s, atoms: A.Atoms):
    """(atom(i), term(monomial, coefficient)): a polynomial's pieces as expressions."""
    return _Writer(s, atoms).pieces()


class _Writer:
    """A polynomial's pieces as expressions, each atom's written once. (A class, not two
    closures that call each other: those would be a reference cycle holding the
    Simplifier, freed only by the cycle collector.)"""

    def __init__(self, s, atoms: A.Atoms):
        self.s, self.items, self.exprs = s, atoms.items, {}

    def pieces(self):
        return self.atom, self.term

    def atom(self, i):
        got = self.exprs.get(i)
        if got is None:
            item = self.items[i]
            got = self.exprs[i] = item if isinstance(item, Expr) else \
                add_(self.s, [self.term(m, c) for m, c in item.items()])
        return got

    def term(self, m, c):   # (a number is its own product; x^1 is x, as pow_ says)
        if not m:
            return _num(c)
        atom = self.atom
        if c == 1 and len(m) == 1 and type(m[0][1]) is int and m[0][1] == 1:
            got = atom(m[0][0])             # 1*x is x: what mul_ would give, without it
            if got.op != "mul":             # (a product it would take apart and sort)
                return got
        return mul_(self.s, [_num(c)] + [atom(i) if type(k) is int and k == 1 else
                                         pow_(self.s, atom(i), _num(k)) for i, k in m])


def _number_out(s, t: dict, writer: tuple, shape, content: tuple | None) -> Expr | None:
    """t with its numeric content taken out and nothing else: 3*(A/c - B/c^3), which can
    be shorter than 3/c^3*(c^2*A - B), the common denominator's form. (`content`: t's,
    when it is known.)"""
    c = (content or A.content(t))[0] if len(t) > 1 else 1
    if c == 1 or c == -1:
        return None
    _, term = writer
    inner = add_(s, [term(m, A.ratio(v, c))
                     for m, v in sorted(t.items(), key=lambda mc: (mc[1] < 0) != (c < 0))])
    return _spread(s, mul_(s, [_num(c), inner]), shape)


def _forms(s, n: dict, den: dict, writer: tuple, shape, content: tuple | None):
    """(rewrite name, expression) for n/den written expanded and with common factors out.
    (`content`: n's, when it is known.)"""
    atom, term = writer

    below = [pow_(s, atom(i), _num(-k)) for i, k in sorted(den.items())]
    if not n:
        yield None, E.zeros(shape)
        return
    # x + b - y: subtracted last; a polynomial in one atom by falling degree
    # (64*x^12 + 2112*x^10 + ... + 10395; add_ puts a first negative term after: 1 - x^2)
    one_atom = _one_varying_atom(n)
    if one_atom is not None:
        n = dict(sorted(n.items(), key=lambda mc: -dict(mc[0]).get(one_atom, 0)))
    else:
        n = dict(sorted(n.items(), key=lambda mc: mc[1] < 0))
    if len(n) > 1:                                             # first: it wins ties
        c, common = content or A.content(n)
        negative = c < 0
        inner = add_(s, [term(A.mono_mul(m, common, -1), A.ratio(v, c))     # (v/c < 0 last)
                         for m, v in (n.items() if one_atom is not None else sorted(
                             n.items(), key=lambda mc: (mc[1] < 0) != negative))])
        yield "factor out", _spread(s, mul_(s, [_num(c)] + [pow_(s, atom(i), _num(k))
                                                               for i, k in common]
                                            + [inner] + below), shape)
        # (rational roots need a polynomial in one atom: with two varying atoms, or none,
        # there are none to look for)
        roots = A.linear_factors({A.mono_mul(m, common, -1): A.ratio(v, c)
                                  for m, v in n.items()}) if one_atom is not None else None
        if roots is not None:                   # 2*s^2 - 3*s + 1 = (1 - s)*(1 - 2*s)
            factors, rest = roots
            yield "factor out", _spread(s, mul_(
                s, [_num(c)] + [pow_(s, atom(i), _num(k)) for i, k in common]
                + [add_(s, [term(m, v) for m, v in p.items()]) for p in [rest] + factors]
                + below), shape)
        if c == 1 and not common:
            return                              # expanded, it is the first form again
    yield "expand", _spread(s, mul_(s, [add_(s, [term(m, c) for m, c in n.items()])] + below),
                            shape)


def _one_varying_atom(n: dict):
    """The one atom whose exponent differs between the terms of the polynomial n (a
    polynomial in that atom, times what all terms share: 64*exp(x^2)*(64*x^12 + ... +
    10395)), or None."""
    monos = [dict(m) for m in n]
    first, rest = monos[0], monos[1:]
    varying = None
    for i in set().union(*monos):
        e = first.get(i, 0)
        for d in rest:
            if d.get(i, 0) != e:
                if varying is not None:
                    return None
                varying = i
                break
    return varying


def _spread(s, e: Expr, shape) -> Expr:
    """e, possibly a scalar, with an array's shape: c*ones(n), c*ones(m)@ones(n)' (so that
    it prints, and parses back, with that shape)."""
    if e.shape == shape:
        return e
    return mul_(s, [e, filled(1, shape)], shape)
