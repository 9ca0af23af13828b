"""Save several keys at once, read them back with one bulk read."""

from dapr.clients import DaprClient
from dapr.clients.grpc._state import StateItem

from outrig_test import STORE, done, expect_equal, key

with DaprClient() as client:
    names = [f'bulk-{i}' for i in range(5)]
    client.save_bulk_state(
        STORE,
        [StateItem(key=key(name), value=f'value-{name}') for name in names],
    )

    wanted = [key(name) for name in names] + [key('bulk-missing')]
    items = client.get_bulk_state(STORE, wanted, parallelism=3).items
    got = {item.key: (item.data, bool(item.etag), item.error) for item in items}
    for name in names:
        expect_equal(got.get(key(name)), (f'value-{name}'.encode(), True, ''), name)
    expect_equal(got.get(key('bulk-missing')), (b'', False, ''), 'missing key')

    # A bulk write with the right ETags succeeds.
    etags = {item.key: item.etag for item in items if item.etag}
    client.save_bulk_state(
        STORE,
        [StateItem(key=k, value='updated', etag=etag) for k, etag in etags.items()],
    )
    again = client.get_bulk_state(STORE, list(etags)).items
    expect_equal({item.data for item in again}, {b'updated'}, 'values after the bulk update')

    for name in names:
        client.delete_state(STORE, key(name))

done('state_bulk')
