"""Transactions: upserts and deletes together, or nothing on a conflict."""

import grpc
from dapr.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType

from outrig_test import STORE, done, expect_equal, expect_grpc_error, key

UPSERT = TransactionOperationType.upsert
DELETE = TransactionOperationType.delete

with DaprClient() as client:
    a, b, c = key('tx-a'), key('tx-b'), key('tx-c')
    client.save_state(STORE, c, 'to be deleted')

    client.execute_state_transaction(
        STORE,
        [
            TransactionalStateOperation(operation_type=UPSERT, key=a, data='A'),
            TransactionalStateOperation(operation_type=UPSERT, key=b, data=b'B'),
            TransactionalStateOperation(operation_type=DELETE, key=c),
        ],
    )
    expect_equal(client.get_state(STORE, a).data, b'A', 'upserted a')
    expect_equal(client.get_state(STORE, b).data, b'B', 'upserted b')
    expect_equal(client.get_state(STORE, c).data, b'', 'deleted c')

    # A stale ETag aborts the whole transaction: the upsert of `a` is not applied.
    stale = client.get_state(STORE, b).etag
    client.save_state(STORE, b, b'B')
    current = client.get_state(STORE, b).etag
    expect_grpc_error(
        lambda: client.execute_state_transaction(
            STORE,
            [
                TransactionalStateOperation(operation_type=UPSERT, key=a, data='changed'),
                TransactionalStateOperation(operation_type=DELETE, key=b, etag=stale),
            ],
        ),
        grpc.StatusCode.ABORTED,
        'ERR_STATE_TRANSACTION',
    )
    expect_equal(client.get_state(STORE, a).data, b'A', 'a after the aborted transaction')
    expect_equal(client.get_state(STORE, b).data, b'B', 'b after the aborted transaction')

    client.execute_state_transaction(
        STORE,
        [
            TransactionalStateOperation(operation_type=DELETE, key=a),
            TransactionalStateOperation(operation_type=DELETE, key=b, etag=current),
        ],
    )
    expect_equal(client.get_state(STORE, b).data, b'', 'b after the cleanup')

done('state_transaction')
