from portico.ids import fast_id


def test_fast_ids_are_unique_fixed_width_and_sort_in_the_order_they_were_made() -> None:
    ids = [fast_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {32}
    assert ids == sorted(ids)
    assert all(c in "0123456789abcdef" for c in "".join(ids[:10]))
    assert all(i[16:].isdigit() for i in ids[:10])
