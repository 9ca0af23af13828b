"""The error cases: the SDK raises what it raises against Dapr."""

import grpc
from dapr.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation

from outrig_test import STORE, done, expect_equal, expect_grpc_error, key

INVALID = grpc.StatusCode.INVALID_ARGUMENT

with DaprClient() as client:
    # An unknown store: INVALID_ARGUMENT with Dapr's message and reason.
    for call in [
        lambda: client.get_state('no-such-store', key('k')),
        lambda: client.save_state('no-such-store', key('k'), 'v'),
        lambda: client.delete_state('no-such-store', key('k')),
        lambda: client.get_bulk_state('no-such-store', [key('k')]),
        lambda: client.execute_state_transaction(
            'no-such-store', [TransactionalStateOperation(key=key('k'), data='v')]
        ),
    ]:
        expect_grpc_error(
            call, INVALID, 'DAPR_STATE_NOT_FOUND', 'state store no-such-store is not found'
        )

    # Keys Dapr refuses.
    expect_grpc_error(
        lambda: client.save_state(STORE, 'a||b', 'v'), INVALID, 'DAPR_STATE_ILLEGAL_KEY', "'||'"
    )
    expect_grpc_error(
        lambda: client.get_state(STORE, 'a||b'), INVALID, 'DAPR_STATE_ILLEGAL_KEY', "'||'"
    )

    # A building block Outrig does not serve yet answers UNIMPLEMENTED, which
    # the SDK reports as it is.
    try:
        client.get_secret('secretstore', key('secret'))
        raise AssertionError('get_secret should fail: Outrig has no secrets API yet')
    except grpc.RpcError as err:
        expect_equal(err.code(), grpc.StatusCode.UNIMPLEMENTED, 'an RPC Outrig lacks')

done('errors')
