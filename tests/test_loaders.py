"""What a batch asks of its provider: the union of every key's selection, and whether an
earlier read covers a later ask."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.federation.loaders import covers, union
from gateway.model import Selection

selections = st.recursive(
    st.builds(Selection, st.frozensets(st.sampled_from(["name", "code", "rooms", "city"]))),
    lambda inner: st.builds(
        Selection,
        st.frozensets(st.sampled_from(["name", "code", "rooms", "city"])),
        st.dictionaries(st.sampled_from(["units", "tenants", "landlord"]), inner, max_size=2),
    ),
    max_leaves=6,
)


def _flat(selection: Selection, prefix: str = "") -> set[str]:
    names = {prefix + name for name in selection.fields}
    for relation, sub in selection.relations.items():
        names |= {prefix + relation + "/"} | _flat(sub, prefix + relation + "/")
    return names


@given(selections, selections)
def test_a_union_asks_what_both_ask_and_covers_each(one: Selection, other: Selection) -> None:
    both = union(one, other)

    assert _flat(both) == _flat(one) | _flat(other)
    assert covers(both, one, True, None) and covers(both, other, True, None)
    assert union(other, one) == both


@given(selections)
def test_a_union_with_itself_or_with_nothing_is_the_selection_itself(one: Selection) -> None:
    """A batch unions every key's selection into what it asks: one selection asked for
    every key must not be rebuilt (and hashed) once per key."""
    assert union(one, one) is one
    assert union(one, Selection()) is one
    assert union(Selection(), one) == one
    if one.fields or one.relations:
        assert union(Selection(), one) is one
