//! The mapping of Redis' error replies onto the contract's errors.

use outrig_sdk::Error;

/// The contract's error for an error reply: states the server is passing
/// through (loading its data, running a slow script, failing over, out of
/// memory, restarted with a password) are `unavailable`, worth a retry.
pub fn server_error(message: &str) -> Error {
    const TRANSIENT: [&str; 8] = [
        "LOADING",
        "BUSY",
        "READONLY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "OOM",
        "NOAUTH",
    ];
    let code = message.split(' ').next().unwrap_or_default();
    if TRANSIENT.contains(&code) {
        Error::unavailable(format!("redis: {message}"))
    } else {
        Error::internal(format!("redis: {message}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_server_states_are_unavailable() {
        assert!(matches!(
            server_error("LOADING data"),
            Error::Unavailable(_)
        ));
        assert!(matches!(server_error("ERR wrong"), Error::Internal(_)));
    }
}
