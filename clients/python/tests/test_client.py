"""The Python client against a live `reshard serve`."""

import threading
import time

import httpx
import pytest

from reshard_client import Delete, PreconditionFailed, Put, ReshardClient, ReshardError


def test_rows_round_trip_with_conditions(client, server):
    client.create_table("users", primary_key="id")
    created = client.put("users", "ada", {"name": "Ada"}, if_none_match=True)
    assert created.created
    with pytest.raises(PreconditionFailed):
        client.put("users", "ada", {"name": "again"}, if_none_match=True)
    row = client.get("users", "ada")
    assert row.value == {"name": "Ada"} and row.version == created.version
    replaced = client.put("users", "ada", {"name": "Ada L."}, if_match=row.version)
    assert not replaced.created and replaced.version > row.version
    with pytest.raises(PreconditionFailed) as refused:
        client.put("users", "ada", {"name": "stale"}, if_match=row.version)
    assert refused.value.status == 412 and refused.value.code == "precondition_failed"
    with pytest.raises(PreconditionFailed):
        client.delete("users", "ada", if_match=row.version)
    assert client.delete("users", "ada", if_match=replaced.version)
    assert client.get("users", "ada") is None
    assert not client.delete("users", "ada")
    # Text is stored byte for byte; odd keys travel escaped.
    odd = '{ "n" : 1.50, "s": "\\u00e9" }'
    client.put("users", "a b/c?é", odd)
    raw = httpx.get(f"{server.url}/v1/tables/users/rows/a%20b%2Fc%3F%C3%A9").text
    assert raw.rstrip("\n").endswith(f'"row":{odd}}}')


def test_bad_input_is_a_4xx_error(client):
    client.create_table("users", primary_key="id")
    for bad in ['{"a":1,"a":2}', "[]", "not json", '{"id":"other"}']:
        with pytest.raises(ReshardError) as error:
            client.put("users", "x", bad)
        assert 400 <= error.value.status < 500, error.value
    with pytest.raises(ReshardError) as error:
        client.get("nope", "x")
    assert error.value.status == 404 and error.value.code == "unknown_table"
    with pytest.raises(ReshardError) as error:
        client.batch_write("users", [Put("x", {}), Delete("x")])
    assert error.value.code == "duplicate_item"
    assert client.get("users", "x") is None


def test_counter_batches_and_pages_hold_through_an_add_shard(client, server):
    client.create_table("counters", primary_key="id")
    client.create_table("orders", primary_key="id", shard_key="customer_id")
    client.put("counters", "hits", {"n": 0}, if_none_match=True)
    orders = [f"o{i}" for i in range(250)]
    for start in range(0, len(orders), 100):
        results = client.batch_write(
            "orders", [Put(pk, {"customer_id": "c7", "amount": int(pk[1:])}, if_none_match=True) for pk in orders[start : start + 100]]
        )
        assert all(result.created for result in results), results
    for chunk in range(12):
        client.batch_write("counters", [Put(f"f{chunk}-{i}", {"n": i}) for i in range(100)])

    client.add_shard("s5")
    created = client.create_migration(
        {"kind": "add_shard", "shard": "s5",
         "options": {"chunk_rows": 50, "max_rows_per_second": 2000, "bake_ms": 300, "tombstone_grace_ms": 0, "canary_step_ms": 50,
                     # Held before the cutover until two listings have run there, however loaded the machine.
                     "gates": ["before_cutover"]}}
    )
    migration = created["id"]
    done = threading.Event()
    successes = [0] * 8
    during = [0] * 8
    failures = []

    def increment(index: int) -> None:
        try:
            with ReshardClient(server.url) as own:
                for _ in range(2000):
                    if done.is_set() and successes[index] >= 3:
                        return
                    if own.update("counters", "hits", lambda row: {"n": row["n"] + 1}) is not None:
                        successes[index] += 1
                        if not done.is_set():
                            during[index] += 1
        except Exception as error:  # reported by the test, not lost in a thread
            failures.append(error)

    threads = [threading.Thread(target=increment, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    listings = 0
    while_held = 0
    phase = ""
    try:
        for _ in range(600):
            listed = [row.pk for row in client.list_all("orders", shard_key="c7", page_size=7)]
            assert listed == sorted(orders), f"listing {listings}: {len(listed)} rows"
            listings += 1
            read = client.batch_get("orders", [(pk, "c7") for pk in orders[:100]])
            assert [row.pk for row in read] == orders[:100]
            assert all(row.value["amount"] == int(row.pk[1:]) for row in read)
            status = client.migration(migration)
            phase = status["phase"]
            if status.get("awaiting_approval"):
                while_held += 1
                if while_held == 2:
                    client.command(migration, "approve")
            if phase in ("done", "failed", "rolled_back"):
                break
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures, failures
    assert phase == "done", phase
    total = sum(successes)
    assert client.get("counters", "hits").value == {"n": total}, successes
    assert sum(during) > 0 and while_held >= 2
    assert any(shard["id"] == "s5" for shard in client.cluster()["shards"])
    print(f"python client: {total} increments ({sum(during)} during the migration), {listings} listings")
