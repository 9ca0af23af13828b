"""Checks Outrig's proto/ against the descriptors the Dapr SDK ships.

Usage: wire_contract.py DESCRIPTOR_SET_FILE

Every message Outrig declares must exist in the SDK under the same full name,
and each of its fields must have the SDK's number, name, type, repetition
and message or enum type. Every RPC must exist in the SDK's service with the same request
and response types and streaming. Enum values must match by number. Outrig
may declare less than Dapr, never something different; what Outrig serves
(OUTRIG_SERVES) must be declared at all, so an RPC dropped from proto/ is
caught too.
"""

import sys

from google.protobuf import descriptor_pb2, descriptor_pool

# Importing the SDK's generated modules fills the default descriptor pool.
import dapr.proto.common.v1.common_pb2  # noqa: F401
import dapr.proto.runtime.v1.appcallback_pb2  # noqa: F401
import dapr.proto.runtime.v1.dapr_pb2  # noqa: F401
import dapr.proto.runtime.v1.pubsub_pb2  # noqa: F401

POOL = descriptor_pool.Default()
problems = []

# The RPCs Outrig serves and the messages they exchange, by full name.
OUTRIG_SERVES = {
    'rpc': [
        'dapr.proto.runtime.v1.Dapr.GetState',
        'dapr.proto.runtime.v1.Dapr.SaveState',
        'dapr.proto.runtime.v1.Dapr.PublishEvent',
        'dapr.proto.runtime.v1.Dapr.BulkPublishEventAlpha1',
        'dapr.proto.runtime.v1.Dapr.BulkPublishEvent',
    ],
    'message': [
        'dapr.proto.runtime.v1.PublishEventRequest',
        'dapr.proto.runtime.v1.BulkPublishRequest',
        'dapr.proto.runtime.v1.BulkPublishRequestEntry',
        'dapr.proto.runtime.v1.BulkPublishResponse',
        'dapr.proto.runtime.v1.BulkPublishResponseFailedEntry',
    ],
}


def check_enum(ours, full_name):
    theirs = POOL.FindEnumTypeByName(full_name)
    known = {v.number: v.name for v in theirs.values}
    for value in ours.value:
        if known.get(value.number) != value.name:
            problems.append(f'{full_name}.{value.name} = {value.number}: Dapr has {known.get(value.number)}')


def check_message(ours, full_name):
    try:
        theirs = POOL.FindMessageTypeByName(full_name)
    except KeyError:
        problems.append(f'message {full_name} is not in Dapr')
        return
    for field in ours.field:
        other = theirs.fields_by_number.get(field.number)
        if other is None:
            problems.append(f'{full_name}.{field.name} = {field.number}: no such field in Dapr')
            continue
        repeated = field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
        ours_type = (field.name, field.type, repeated, field.type_name.lstrip('.'))
        their_type_name = (other.message_type or other.enum_type)
        theirs_type = (
            other.name,
            other.type,
            other.is_repeated,
            their_type_name.full_name if their_type_name else '',
        )
        if ours_type != theirs_type:
            problems.append(f'{full_name} field {field.number}: ours {ours_type}, Dapr {theirs_type}')
    for nested in ours.nested_type:
        if not nested.options.map_entry:
            check_message(nested, f'{full_name}.{nested.name}')
    for enum in ours.enum_type:
        check_enum(enum, f'{full_name}.{enum.name}')


def check_service(ours, full_name):
    theirs = POOL.FindServiceByName(full_name)
    for method in ours.method:
        other = theirs.methods_by_name.get(method.name)
        if other is None:
            problems.append(f'rpc {full_name}.{method.name} is not in Dapr')
            continue
        ours_shape = (
            method.input_type.lstrip('.'),
            method.output_type.lstrip('.'),
            method.client_streaming,
            method.server_streaming,
        )
        theirs_shape = (
            other.input_type.full_name,
            other.output_type.full_name,
            other.client_streaming,
            other.server_streaming,
        )
        if ours_shape != theirs_shape:
            problems.append(f'rpc {full_name}.{method.name}: ours {ours_shape}, Dapr {theirs_shape}')


descriptors = descriptor_pb2.FileDescriptorSet()
with open(sys.argv[1], 'rb') as f:
    descriptors.ParseFromString(f.read())

checked = 0
declared = set()
for file in descriptors.file:
    if not file.package.startswith('dapr.'):
        continue
    for message in file.message_type:
        check_message(message, f'{file.package}.{message.name}')
        declared.add(f'{file.package}.{message.name}')
        checked += 1
    for enum in file.enum_type:
        check_enum(enum, f'{file.package}.{enum.name}')
    for service in file.service:
        check_service(service, f'{file.package}.{service.name}')
        declared.update(f'{file.package}.{service.name}.{m.name}' for m in service.method)
        checked += 1

for kind, names in OUTRIG_SERVES.items():
    for name in names:
        if name not in declared:
            problems.append(f'{kind} {name} is served by Outrig but not declared in proto/')

if checked == 0:
    problems.append('no Dapr message or service found in the descriptor set')
for problem in problems:
    print(problem)
if problems:
    sys.exit(1)
print(f'wire_contract: {checked} messages and services match the Dapr SDK')
