"""The state query API (alpha) where the store supports it; Dapr's error where not."""

import json

import grpc
from dapr.clients import DaprClient

from outrig_test import QUERY_SUPPORTED, STORE, done, expect_equal, expect_grpc_error, key

PEOPLE = {
    'ada': {'name': 'ada', 'state': 'CA'},
    'bob': {'name': 'bob', 'state': 'WA'},
    'cy': {'name': 'cy', 'state': 'CA'},
    'dee': {'name': 'dee', 'state': 'CA'},
}


def query(filter_state, limit=None, token=None):
    page = {}
    if limit is not None:
        page['limit'] = limit
    if token:
        page['token'] = token
    body = {'filter': {'EQ': {'state': filter_state}}, 'sort': [{'key': 'name'}]}
    if page:
        body['page'] = page
    return json.dumps(body)


with DaprClient() as client:
    if not QUERY_SUPPORTED:
        expect_grpc_error(
            lambda: client.query_state(STORE, query('CA')),
            grpc.StatusCode.INTERNAL,
            'DAPR_STATE_QUERYING_NOT_SUPPORTED',
            'does not support querying',
        )
        done('state_query (not supported)')
        raise SystemExit(0)

    for name, person in PEOPLE.items():
        client.save_state(STORE, key(name), json.dumps(person))

    answer = client.query_state(STORE, query('CA'))
    got = [(item.key, item.json()['name']) for item in answer.results]
    expect_equal(got, [(key('ada'), 'ada'), (key('cy'), 'cy'), (key('dee'), 'dee')], 'CA people')
    if not all(item.etag for item in answer.results):
        raise AssertionError('query results carry ETags')

    # Paging: two pages of two and one.
    first = client.query_state(STORE, query('CA', limit=2))
    expect_equal([item.key for item in first.results], [key('ada'), key('cy')], 'first page')
    if not first.token:
        raise AssertionError('a full page must come with a token')
    second = client.query_state(STORE, query('CA', limit=2, token=first.token))
    expect_equal([item.key for item in second.results], [key('dee')], 'second page')

    nobody = client.query_state(STORE, query('NV'))
    expect_equal(list(nobody.results), [], 'no match')

    for name in PEOPLE:
        client.delete_state(STORE, key(name))

done('state_query')
