"""The HTTP and gRPC APIs return identical data for the same key."""

import json
import os
import urllib.request

from dapr.clients import DaprClient

from outrig_test import STORE, done, expect_equal, key

BASE = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/state/{STORE}"


def http(method, url, body=None):
    """One HTTP API call: (status, body bytes, ETag header)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header('content-type', 'application/json')
    with urllib.request.urlopen(request) as response:
        return response.status, response.read(), response.headers.get('etag') or ''


with DaprClient() as client:
    # Written over HTTP, read over both.
    over_http = key('via-http')
    http('POST', BASE, [{'key': over_http, 'value': {'qty': 3, 'tags': ['a', 'b']}}])
    status, http_body, http_etag = http('GET', f'{BASE}/{over_http}')
    expect_equal(status, 200, 'HTTP status')
    grpc_item = client.get_state(STORE, over_http)
    expect_equal(grpc_item.data, http_body, 'value written over HTTP')
    expect_equal(grpc_item.etag, http_etag, 'ETag written over HTTP')

    # Written over gRPC, read over both.
    over_grpc = key('via-grpc')
    client.save_state(STORE, over_grpc, '{"qty": 4}')
    status, http_body, http_etag = http('GET', f'{BASE}/{over_grpc}')
    grpc_item = client.get_state(STORE, over_grpc)
    expect_equal((http_body, http_etag), (grpc_item.data, grpc_item.etag), 'value written over gRPC')
    expect_equal(grpc_item.data, b'{"qty": 4}', 'stored bytes')

    # Bulk reads agree too.
    _, bulk_body, _ = http('POST', f'{BASE}/bulk', {'keys': [over_http, over_grpc]})
    over_http_bulk = {item['key']: (item.get('data'), item.get('etag')) for item in json.loads(bulk_body)}
    for item in client.get_bulk_state(STORE, [over_http, over_grpc]).items:
        data, etag = over_http_bulk[item.key]
        expect_equal((json.loads(item.data), item.etag), (data, etag), f'bulk {item.key}')

    # A delete over one API is seen by the other.
    client.delete_state(STORE, over_http)
    status, _, _ = http('GET', f'{BASE}/{over_http}')
    expect_equal(status, 204, 'HTTP read after a gRPC delete')
    http('DELETE', f'{BASE}/{over_grpc}')
    expect_equal(client.get_state(STORE, over_grpc).data, b'', 'gRPC read after an HTTP delete')

done('http_grpc_parity')
