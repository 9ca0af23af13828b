"""An order service's state, kept by Outrig through the unmodified Dapr Python SDK.

Run it beside a sidecar:  outrig run --app-id orders -- python3 app.py
"""

import json

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateOptions

STORE = 'statestore'

with DaprClient() as client:
    # Save an order and read it back with its ETag.
    client.save_state(STORE, 'order-1', json.dumps({'item': 'tea', 'qty': 2}))
    order = client.get_state(STORE, 'order-1')
    print(f'order-1 = {order.data.decode()} (etag {order.etag})')

    # Optimistic concurrency: update only if nobody changed it meanwhile.
    client.save_state(
        STORE,
        'order-1',
        json.dumps({'item': 'tea', 'qty': 3}),
        etag=order.etag,
        options=StateOptions(concurrency=Concurrency.first_write),
    )
    try:
        client.save_state(STORE, 'order-1', json.dumps({'qty': 0}), etag=order.etag)
    except DaprGrpcError as err:
        print(f'stale update refused: {err.code().name} ({err.error_code()})')

    # Several orders at once, atomically.
    client.execute_state_transaction(
        STORE,
        [
            TransactionalStateOperation(key='order-2', data=json.dumps({'item': 'cake', 'qty': 1})),
            TransactionalStateOperation(key='order-3', data=json.dumps({'item': 'tea', 'qty': 5})),
            TransactionalStateOperation(
                key='order-1', operation_type=TransactionOperationType.delete
            ),
        ],
    )
    for item in client.get_bulk_state(STORE, ['order-1', 'order-2', 'order-3']).items:
        print(f'{item.key} = {item.data.decode() or "(deleted)"}')

    # Query (the embedded store supports Dapr's state query language).
    query = json.dumps({'filter': {'EQ': {'item': 'tea'}}})
    teas = client.query_state(STORE, query)
    print('tea orders:', sorted(result.key for result in teas.results))

    # Clean up, so the sample can run again from scratch.
    for key in ['order-2', 'order-3']:
        client.delete_state(STORE, key)
    print('done')
