//! A backend connection opened on first use and dropped after any failure,
//! so a component never reuses a connection that is out of step with its
//! server, and a component whose backend is down still loads.

use std::io;

/// A connection slot: empty until the first call, emptied again by any
/// failed call, so the next call starts on a fresh connection.
pub struct Lazy<C> {
    conn: Option<C>,
}

impl<C> Default for Lazy<C> {
    fn default() -> Self {
        Lazy { conn: None }
    }
}

impl<C> Lazy<C> {
    /// Runs `f` on the connection, opening it with `open` first if needed.
    /// On failure the connection is dropped. With `retry_if_closed` (for
    /// calls that are safe to repeat), a call that fails because a connection
    /// reused from an earlier call had been closed by the server (as servers
    /// do with idle clients) is retried once on a fresh connection.
    pub fn run<T>(
        &mut self,
        open: impl Fn() -> io::Result<C>,
        retry_if_closed: bool,
        f: impl Fn(&mut C) -> io::Result<T>,
    ) -> io::Result<T> {
        let reused = self.conn.is_some();
        match self.attempt(&open, &f) {
            Err(err) if reused && retry_if_closed && was_closed(&err) => self.attempt(&open, &f),
            result => result,
        }
    }

    fn attempt<T>(
        &mut self,
        open: &impl Fn() -> io::Result<C>,
        f: &impl Fn(&mut C) -> io::Result<T>,
    ) -> io::Result<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(open()?),
        };
        let result = f(conn);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// The open connection, if any (for tests that poke at it).
    pub fn get_mut(&mut self) -> Option<&mut C> {
        self.conn.as_mut()
    }

    /// Whether a connection is open.
    pub fn is_open(&self) -> bool {
        self.conn.is_some()
    }
}

/// Whether an error means the peer had closed the connection, rather than
/// that it is slow or refused the request.
pub fn was_closed(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        err.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_failed_call_drops_the_connection_and_a_closed_one_is_retried_once() {
        let opened = Cell::new(0);
        let open = || {
            opened.set(opened.get() + 1);
            Ok(opened.get())
        };
        let mut lazy = Lazy::default();
        assert_eq!(lazy.run(open, true, |c| Ok(*c)).ok(), Some(1));
        // A reused connection found closed: retried on a second one.
        let closed = |c: &mut i32| match *c {
            1 => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n => Ok(n),
        };
        assert_eq!(lazy.run(open, true, closed).ok(), Some(2));
        // Any other failure drops the connection without a retry.
        let refused = |_: &mut i32| -> io::Result<i32> { Err(io::ErrorKind::InvalidData.into()) };
        assert!(lazy.run(open, true, refused).is_err());
        assert!(!lazy.is_open());
        assert_eq!(lazy.run(open, false, |c| Ok(*c)).ok(), Some(3));
    }
}
