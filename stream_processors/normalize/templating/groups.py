"""Templates as groups of shapes: one template id over several token counts or words.

A *shape* (:class:`Cluster`) is what the prefix tree matches: a fixed number of
tokens, some of them wildcards. A *template* is a group of shapes with one id and
one text. Most groups hold one shape. Shapes join one group when

* their skeletons are equal (:mod:`align`): one event whose values span a varying
  number of tokens, or differ only in a unit word (``403 bytes`` / ``1190 bytes (1.16
  KB)``); or
* they differ only at positions where new words kept turning up (see
  :class:`Family`): the words there are values, not the event.

The group keeps the id of its oldest shape; a younger group's id becomes an alias
(:class:`Templates` still answers it). Nothing here is thread-safe.
"""

from __future__ import annotations

from stream_processors.normalize.templating.align import group_text
from stream_processors.normalize.templating.tokens import Wild


class Cluster:
    """One shape (and, when ``root is self``, the template of its group).

    Mutable, owned by its :class:`~stream_processors.normalize.templating.TemplateMiner`;
    read, don't modify. ``text`` is the group's text on a root; ``size`` counts the
    lines this shape matched (:attr:`total` the group's).
    """

    __slots__ = (
        "anchor",
        "id",
        "key",
        "members",
        "root",
        "seen",
        "seq",
        "siblings",
        "size",
        "skel",
        "text",
        "tokens",
        "wild",
        "wild_positions",
    )

    def __init__(self, cid: str, key: str, tokens: list[str], wild: list[Wild | None], seq: int = 0) -> None:
        self.id = cid
        self.key = key
        self.tokens = tokens
        self.wild = wild
        self.size = 0
        self.seq = seq
        self.text = " ".join(tokens)
        self.wild_positions = tuple(i for i, w in enumerate(wild) if w is not None)
        self.root: Cluster = self
        self.members: list[Cluster] = [self]
        self.anchor: Cluster | None = None
        self.siblings: list[Cluster] = []
        self.seen: dict[int, list[str]] = {}
        self.skel: tuple[str, ...] | None = None

    @property
    def total(self) -> int:
        """Lines matched by every shape of this shape's group."""
        return sum(m.size for m in self.root.members)

    def refresh(self) -> None:
        """Recompute the group's text after a shape of it changed."""
        root = self.root
        members = root.members
        tokens = list(members[0].tokens)
        for other in members[1:]:
            tokens = group_text(tokens, other.tokens)
        root.text = " ".join(tokens)


class Templates(dict[str, Cluster]):
    """Template id -> root :class:`Cluster`, in creation order.

    Iterating gives the live templates only. Looking up the id of a shape that has
    joined an older template (``templates[old_id]``) answers that template, so an id
    handed out before a merge still resolves; ``in`` and ``get`` see live ids only.
    """

    def __init__(self, shapes: dict[str, Cluster]) -> None:
        super().__init__()
        self.shapes = shapes

    def __missing__(self, key: str) -> Cluster:
        shape = self.shapes.get(key)
        if shape is None:
            raise KeyError(key)
        return shape.root


def link(a: Cluster, b: Cluster, templates: Templates) -> Cluster:
    """Join the groups of shapes ``a`` and ``b``; the older root stays. Returns it."""
    ra, rb = a.root, b.root
    if ra is rb:
        return ra
    old, young = (ra, rb) if ra.seq <= rb.seq else (rb, ra)
    for member in young.members:
        member.root = old
    old.members.extend(young.members)
    young.members = [young]
    templates.pop(young.id, None)
    old.refresh()
    return old


def differences(a: Cluster, b: Cluster) -> list[int] | None:
    """Positions where same-length shape ``b`` is not covered by ``a``; None if lengths differ."""
    if len(a.tokens) != len(b.tokens):
        return None
    out = []
    for i, (t, w, x) in enumerate(zip(a.tokens, a.wild, b.tokens, strict=True)):
        if t != x and not (w is not None and x.startswith(w[0]) and x.endswith(w[1])):
            out.append(i)
    return out


class Family:
    """Words seen at soft-clash positions of one anchor shape (static helpers).

    A line that differs from the anchor only by plain words at some positions first
    starts a sibling shape (its own template: the words may be what the event is,
    ``stored as bytes`` / ``stored as values``). Each position remembers the distinct
    words seen there; once it holds ``value_after`` of them the position is a value
    (user names, hosts): the anchor gets a wildcard there and the siblings that only
    differed there join the anchor's template.
    """

    @staticmethod
    def note(anchor: Cluster, positions: list[int], tokens: list[str], limit: int) -> bool:
        """Record ``tokens``' words at ``positions``; True when all of them are values now."""
        variable = True
        for p in positions:
            words = anchor.seen.get(p)
            if words is None:
                words = anchor.seen[p] = [anchor.tokens[p]]
            if tokens[p] not in words and len(words) < limit:
                words.append(tokens[p])
            variable = variable and len(words) >= limit
        return variable
