"""GetMetadata and SetMetadata through the SDK, and the same answer over HTTP."""

import json
import os
import urllib.request

from dapr.clients import DaprClient

from outrig_test import PREFIX, STORE, done, expect_equal

with DaprClient() as client:
    metadata = client.get_metadata()
    expect_equal(metadata.application_id, os.environ['APP_ID'], 'application id')
    stores = {c.name: c for c in metadata.registered_components}
    if STORE not in stores:
        raise AssertionError(f'{STORE} not in {sorted(stores)}')
    store = stores[STORE]
    if not store.type.startswith('state.'):
        raise AssertionError(f'unexpected type {store.type}')
    if 'ETAG' not in store.capabilities:
        raise AssertionError(f'{STORE} should report ETAG, got {store.capabilities}')
    if 'daprRuntimeVersion' not in metadata.extended_metadata:
        raise AssertionError(f'no daprRuntimeVersion in {metadata.extended_metadata}')

    client.set_metadata('testRun', PREFIX)
    again = client.get_metadata()
    expect_equal(again.extended_metadata.get('testRun'), PREFIX, 'attribute set over gRPC')

    # The HTTP API reports the same components and attributes.
    url = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/metadata"
    with urllib.request.urlopen(url) as response:
        http = json.load(response)
    expect_equal(http['id'], again.application_id, 'id over HTTP')
    expect_equal(http['extended'], again.extended_metadata, 'extended over HTTP')
    http_components = {
        c['name']: (c['type'], c['version'], c['capabilities']) for c in http['components']
    }
    grpc_components = {
        c.name: (c.type, c.version, list(c.capabilities)) for c in again.registered_components
    }
    expect_equal(grpc_components, http_components, 'components over gRPC and HTTP')

done('metadata')
