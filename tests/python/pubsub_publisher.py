"""Publishes with the Dapr SDK's `DaprClient` to the topics
pubsub_subscriber.py subscribes to, then checks that bad publishes raise
what they raise against Dapr.

tests/python_sdk.rs runs it once the sidecar reports healthy (the
subscriber's subscriptions exist at the broker), with DAPR_GRPC_PORT and
DAPR_HTTP_PORT naming the sidecar, OUTRIG_TEST_PUBSUB the component and
OUTRIG_TEST_PREFIX the run's topic prefix. What the subscriber must receive
is checked by the test from the subscriber's record, not here: this program
only knows that each publish was accepted.
"""

import json
import os

import grpc
from dapr.clients import DaprClient

from outrig_test import done, expect_equal, expect_grpc_error

PUBSUB = os.environ['OUTRIG_TEST_PUBSUB']
PREFIX = os.environ['OUTRIG_TEST_PREFIX']
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def topic(name):
    """The run's topic `name`, as the subscriber names it."""
    return f'{PREFIX}-{name}'


with DaprClient() as client:
    # One JSON event, then two text events in one bulk publish: all three
    # reach the `orders` handler.
    client.publish_event(
        PUBSUB, topic('orders'), json.dumps({'n': 1}), data_content_type='application/json'
    )
    bulk = client.publish_events(
        PUBSUB, topic('orders'), ['bulk-1', 'bulk-2'], data_content_type='text/plain'
    )
    expect_equal(bulk.failed_entries, [], 'bulk publish failed entries')

    # A CloudEvent of type `vip` (kept as the app wrote it) takes the first
    # routing rule; a plain event (type com.dapr.event.sent) the second.
    vip = {
        'specversion': '1.0',
        'id': f'{PREFIX}-vip',
        'source': 'py-publisher',
        'type': 'vip',
        'datacontenttype': 'application/json',
        'data': {'tier': 'gold'},
    }
    client.publish_event(
        PUBSUB, topic('routed'), json.dumps(vip), data_content_type='application/cloudevents+json'
    )
    client.publish_event(
        PUBSUB, topic('routed'), 'regular-1', data_content_type='text/plain'
    )

    # The subscriber asks for this one again.
    client.publish_event(
        PUBSUB, topic('flaky'), json.dumps({'again': True}), data_content_type='application/json'
    )

    # Bad publishes: Dapr's status codes and ErrorInfo reasons.
    expect_grpc_error(
        lambda: client.publish_event('no-such-pubsub', topic('orders'), 'x'),
        INVALID,
        'DAPR_PUBSUB_NOT_FOUND',
        'pubsub no-such-pubsub is not found',
    )
    expect_grpc_error(
        lambda: client.publish_event(PUBSUB, '', 'x'),
        INVALID,
        'DAPR_PUBSUB_TOPIC_NAME_EMPTY',
        f'topic is empty in pubsub {PUBSUB}',
    )
    expect_grpc_error(
        lambda: client.publish_event(
            PUBSUB,
            topic('orders'),
            '{"specversion": "1.0", "id": ',
            data_content_type='application/cloudevents+json',
        ),
        INVALID,
        'DAPR_PUBSUB_CLOUD_EVENT_CREATION',
        'cannot create cloudevent',
    )
    # Over the 4 MiB message limit: refused by the gRPC server before any
    # handler runs, with the code grpc-go gives Dapr's SDKs.
    try:
        client.publish_event(PUBSUB, topic('orders'), b'x' * (5 * 1024 * 1024))
        raise AssertionError('a 5 MiB publish should be refused')
    except grpc.RpcError as err:
        expect_equal(err.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, f'5 MiB ({err.details()})')
        if '4194304' not in err.details():
            raise AssertionError(f'the message names no limit: {err.details()!r}')

    # Still serving after all of that.
    client.publish_event(PUBSUB, topic('orders'), 'after-errors', data_content_type='text/plain')

done('pubsub_publisher')
