"""Save, get and delete one key with ETags, options and TTL metadata."""

import grpc
from dapr.clients import DaprClient
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

from outrig_test import STORE, done, expect_equal, expect_grpc_error, key

with DaprClient() as client:
    k = key('order')

    # A missing key reads as empty data and no ETag.
    missing = client.get_state(STORE, k)
    expect_equal((missing.data, missing.etag), (b'', ''), 'missing key')

    client.save_state(STORE, k, '{"qty": 1}')
    first = client.get_state(STORE, k)
    expect_equal(first.data, b'{"qty": 1}', 'saved value')
    if not first.etag:
        raise AssertionError('a saved item must have an ETag')

    # Strings, bytes and the strong consistency read all work.
    client.save_state(STORE, k, b'{"qty": 2}', etag=first.etag)
    second = client.get_state(STORE, k)
    expect_equal(second.data, b'{"qty": 2}', 'value after a conditional write')
    if second.etag == first.etag:
        raise AssertionError('a write must change the ETag')

    # First-write concurrency with a stale ETag is refused as Dapr refuses it.
    first_write = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)
    expect_grpc_error(
        lambda: client.save_state(STORE, k, b'stale', etag=first.etag, options=first_write),
        grpc.StatusCode.ABORTED,
        'ERR_STATE_SAVE',
        'etag',
    )
    expect_equal(client.get_state(STORE, k).data, b'{"qty": 2}', 'value after a refused write')

    # Delete with a stale ETag fails, with the current one succeeds.
    expect_grpc_error(
        lambda: client.delete_state(STORE, k, etag=first.etag),
        grpc.StatusCode.ABORTED,
        'ERR_STATE_DELETE',
    )
    client.delete_state(STORE, k, etag=second.etag, options=first_write)
    expect_equal(client.get_state(STORE, k).data, b'', 'value after delete')

    # Deleting a key that does not exist is no error.
    client.delete_state(STORE, key('never-saved'))

    # TTL metadata: a valid value is accepted, an invalid one refused.
    client.save_state(STORE, key('ttl'), 'short-lived', state_metadata={'ttlInSeconds': '3600'})
    expect_equal(client.get_state(STORE, key('ttl')).data, b'short-lived', 'value with a TTL')
    expect_grpc_error(
        lambda: client.save_state(STORE, key('ttl'), 'x', state_metadata={'ttlInSeconds': 'soon'}),
        grpc.StatusCode.INVALID_ARGUMENT,
        'ERR_STATE_SAVE',
        'ttlInSeconds',
    )
    client.delete_state(STORE, key('ttl'))

done('state_crud')
