"""What every Python SDK test program shares.

The programs run as the app under `outrig run` (see tests/python_sdk.rs), so
the Dapr SDK finds the sidecar through DAPR_HTTP_PORT and DAPR_GRPC_PORT. The
test sets:

- OUTRIG_TEST_STORE: the state store to use (default `statestore`);
- OUTRIG_TEST_PREFIX: a prefix unique to this run, for every key;
- OUTRIG_TEST_QUERY: `1` when the store supports the query API.

A program exits 0 when every check passed; a failed check raises, which
prints a traceback and exits non-zero.
"""

import os

from dapr.clients.exceptions import DaprGrpcError

STORE = os.environ.get('OUTRIG_TEST_STORE', 'statestore')
PREFIX = os.environ.get('OUTRIG_TEST_PREFIX', 'py')
QUERY_SUPPORTED = os.environ.get('OUTRIG_TEST_QUERY') == '1'


def key(name):
    """A key unique to this run."""
    return f'{PREFIX}-{name}'


def expect_equal(got, want, what):
    """Fails with both values when they differ."""
    if got != want:
        raise AssertionError(f'{what}: got {got!r}, want {want!r}')


def expect_grpc_error(call, code, error_code, message_part=''):
    """Runs `call`, which must raise DaprGrpcError with the gRPC status `code`
    (a grpc.StatusCode), the Dapr error code `error_code` (the ErrorInfo
    reason) and a message containing `message_part`."""
    try:
        call()
    except DaprGrpcError as err:
        expect_equal(err.code(), code, f'status code ({err.details()})')
        expect_equal(err.error_code(), error_code, f'error code ({err.details()})')
        if message_part not in err.details():
            raise AssertionError(f'message {err.details()!r} lacks {message_part!r}')
        return err
    raise AssertionError(f'expected {code} / {error_code}, but the call succeeded')


def done(program):
    """Reports success on stdout, where the test looks for it."""
    print(f'{program}: all checks passed', flush=True)
