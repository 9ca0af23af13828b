"""DAPR_API_TOKEN: the SDK sends it and is served; a call without it is refused.

The test starts the sidecar and this app with DAPR_API_TOKEN set.
"""

import os

import grpc
from dapr.clients import DaprClient
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2

from outrig_test import STORE, done, expect_equal, key

if not os.environ.get('DAPR_API_TOKEN'):
    raise AssertionError('run this program with DAPR_API_TOKEN set')

with DaprClient() as client:
    client.save_state(STORE, key('guarded'), 'v')
    expect_equal(client.get_state(STORE, key('guarded')).data, b'v', 'value read with the token')

    address = f"127.0.0.1:{os.environ['DAPR_GRPC_PORT']}"
    with grpc.insecure_channel(address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        request = state_pb2.GetStateRequest(store_name=STORE, key=key('guarded'))
        for metadata, message in [
            ((), 'authentication error: missing api token'),
            ((('dapr-api-token', 'wrong'),), 'authentication error: api token mismatch'),
        ]:
            try:
                stub.GetState(request, metadata=metadata)
                raise AssertionError(f'a call with metadata {metadata} was served')
            except grpc.RpcError as err:
                expect_equal((err.code(), err.details()), (grpc.StatusCode.UNAUTHENTICATED, message), 'refusal')

    client.delete_state(STORE, key('guarded'))

done('api_token')
