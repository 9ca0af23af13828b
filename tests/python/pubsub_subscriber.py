"""A gRPC app written with the Dapr SDK's `dapr.ext.grpc.App`, subscribing
to pub/sub topics the way a Dapr app does.

tests/python_sdk.rs starts it (`pubsub_subscriber.py PORT RECORD_FILE`),
starts outrig with `--app-port PORT --app-protocol grpc`, publishes with
pubsub_publisher.py, and reads RECORD_FILE to check what arrived. It reads:

- OUTRIG_TEST_PUBSUB: the pub/sub component;
- OUTRIG_TEST_PREFIX: a prefix unique to the run, for every topic.

Subscriptions (see `topic` for the names):

- `orders`: one handler and no rule, so outrig delivers with an empty path
  and the SDK finds the handler by topic, as with Dapr;
- `routed`: two handlers picked by routing rules on the event's type,
  `vip` (`event.type == "vip"`, priority 1) before `regular` (priority 2);
- `flaky`: answers RETRY the first time it sees an event id, then SUCCESS,
  so the event must come again.

Every delivery is appended to RECORD_FILE as one JSON line: the handler,
the answer it gave, and the event's id, type, topic, pubsub name, content
type and data (as text).
"""

import json
import os
import sys
import threading

from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App, Rule, SubscriptionMessage

PUBSUB = os.environ['OUTRIG_TEST_PUBSUB']
PREFIX = os.environ['OUTRIG_TEST_PREFIX']
PORT = int(sys.argv[1])
RECORD_FILE = sys.argv[2]

app = App()
# The SDK's server runs handlers on a thread pool: one writer at a time.
record_lock = threading.Lock()
seen_flaky = set()


def topic(name):
    """The run's topic `name` (the publisher names them the same way)."""
    return f'{PREFIX}-{name}'


def record(handler, event: SubscriptionMessage, answer):
    """Appends one delivery to RECORD_FILE, whole lines only."""
    line = json.dumps(
        {
            'handler': handler,
            'answer': answer,
            'id': event.id(),
            'type': event.type(),
            'topic': event.topic(),
            'pubsub': event.pubsub_name(),
            'content_type': event.data_content_type(),
            'data': event.raw_data().decode('utf-8', 'replace'),
        }
    )
    with record_lock, open(RECORD_FILE, 'a', encoding='utf-8') as out:
        out.write(line + '\n')
        out.flush()


@app.subscribe(pubsub_name=PUBSUB, topic=topic('orders'))
def orders(event: SubscriptionMessage) -> TopicEventResponse:
    """The topic's only handler: no rule, so Dapr gives it an empty path."""
    record('orders', event, 'success')
    return TopicEventResponse('success')


@app.subscribe(pubsub_name=PUBSUB, topic=topic('routed'), rule=Rule('event.type == "vip"', 1))
def vip(event: SubscriptionMessage) -> TopicEventResponse:
    """Events of type `vip`: the first rule."""
    record('vip', event, 'success')
    return TopicEventResponse('success')


@app.subscribe(pubsub_name=PUBSUB, topic=topic('routed'), rule=Rule('event.type != "vip"', 2))
def regular(event: SubscriptionMessage) -> TopicEventResponse:
    """Every other event of the topic: the second rule."""
    record('regular', event, 'success')
    return TopicEventResponse('success')


@app.subscribe(pubsub_name=PUBSUB, topic=topic('flaky'))
def flaky(event: SubscriptionMessage) -> TopicEventResponse:
    """Asks for one redelivery of every event."""
    with record_lock:
        first_time = event.id() not in seen_flaky
        seen_flaky.add(event.id())
    answer = 'retry' if first_time else 'success'
    record('flaky', event, answer)
    return TopicEventResponse(answer)


# Loopback only; blocks until the process is killed.
app.run(PORT, listen_address='127.0.0.1')
