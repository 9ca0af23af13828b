//! One PostgreSQL session: startup and authentication (trust, cleartext, MD5,
//! SCRAM-SHA-256), then statements run with the extended query protocol
//! (Parse/Bind/Execute/Sync). Parameters are always bound as values, never
//! spliced into SQL text.

use crate::auth::{self, Scram};
use crate::config::ConnParams;
use crate::wire::{Message, Outbox, read_message, violation};
use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a call on the connection failed.
#[derive(Debug)]
pub enum PgError {
    /// The connection is broken or out of step with the server: drop it.
    Io(io::Error),
    /// The server refused the statement; the session is still usable unless
    /// [`PgError::is_fatal`] says otherwise.
    Server(ServerError),
}

impl PgError {
    /// Whether the connection must be dropped after this error.
    pub fn is_fatal(&self) -> bool {
        match self {
            PgError::Io(_) => true,
            PgError::Server(err) => matches!(err.severity.as_str(), "FATAL" | "PANIC"),
        }
    }
}

impl From<io::Error> for PgError {
    fn from(err: io::Error) -> Self {
        PgError::Io(err)
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Io(err) => write!(f, "{err}"),
            PgError::Server(err) => write!(
                f,
                "{}: {} (SQLSTATE {})",
                err.severity, err.message, err.code
            ),
        }
    }
}

/// The fields of an `ErrorResponse` this component uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL` or `PANIC` (never localized).
    pub severity: String,
    /// The SQLSTATE, e.g. `23505` for a unique violation.
    pub code: String,
    /// The primary, human-readable message.
    pub message: String,
}

/// The rows a statement returned, in text format, and how many rows it touched.
#[derive(Debug, Default)]
pub struct Rows {
    /// Each row's columns; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<Vec<u8>>>>,
    /// From the command tag: rows inserted, updated, deleted or selected.
    pub affected: u64,
}

/// An authenticated session, ready for statements.
pub struct PgConnection<S: Read + Write> {
    stream: BufReader<S>,
    /// The transaction status from the last `ReadyForQuery`: `I`dle, in a
    /// `T`ransaction, or in a failed transaction (`E`).
    status: u8,
}

impl PgConnection<TcpStream> {
    /// Connects to the server named in `params` and logs in.
    pub fn open(params: &ConnParams, timeout: Duration) -> Result<Self, PgError> {
        let addresses = (params.host.as_str(), params.port).to_socket_addrs()?;
        let mut failure = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => {
                    // Best effort, as some WASI hosts lack these options; the
                    // host's per-call deadline still bounds a stuck call.
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_read_timeout(Some(timeout));
                    let _ = stream.set_write_timeout(Some(timeout));
                    return PgConnection::startup(stream, params);
                }
                Err(err) => failure = Some(err),
            }
        }
        let unresolved = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{}` has no address", params.host),
            )
        };
        Err(PgError::Io(failure.unwrap_or_else(unresolved)))
    }
}

impl<S: Read + Write> PgConnection<S> {
    /// Sends the startup message and answers whatever authentication the
    /// server asks for, until it is ready for queries.
    pub fn startup(stream: S, params: &ConnParams) -> Result<Self, PgError> {
        let mut conn = PgConnection {
            stream: BufReader::new(stream),
            status: b'I',
        };
        let mut outbox = Outbox::default();
        outbox.startup(&[
            ("user", &params.user),
            ("database", &params.database),
            ("application_name", &params.application_name),
            ("client_encoding", "UTF8"),
        ]);
        conn.send(&outbox)?;
        let mut scram = None;
        loop {
            let message = read_message(&mut conn.stream)?;
            match message.kind {
                b'R' => conn.authenticate(&message, params, &mut scram)?,
                b'E' => return Err(PgError::Server(server_error(&message)?)),
                b'Z' => {
                    conn.status = ready_status(&message)?;
                    return Ok(conn);
                }
                // ParameterStatus, BackendKeyData, NoticeResponse, NegotiateProtocolVersion.
                b'S' | b'K' | b'N' | b'v' => {}
                other => return Err(unexpected(other).into()),
            }
        }
    }

    /// Answers one `Authentication*` request.
    fn authenticate(
        &mut self,
        message: &Message,
        params: &ConnParams,
        scram: &mut Option<Scram>,
    ) -> io::Result<()> {
        let mut fields = message.fields();
        let password = || {
            params.password.as_deref().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the server asks for a password; connectionString has none",
                )
            })
        };
        let mut outbox = Outbox::default();
        match fields.i32()? {
            0 => return Ok(()),
            3 => outbox.password(password()?),
            5 => outbox.password(&auth::md5_password(
                &params.user,
                password()?,
                fields.bytes(4)?,
            )),
            10 => {
                let mut mechanisms = Vec::new();
                while let Ok(name) = fields.cstr() {
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name);
                }
                if !mechanisms.iter().any(|m| m == auth::SCRAM_SHA_256) {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!(
                            "the server offers SASL mechanisms {mechanisms:?}; only SCRAM-SHA-256 is supported"
                        ),
                    ));
                }
                let exchange = scram.insert(Scram::new(password()?)?);
                outbox.sasl_initial(auth::SCRAM_SHA_256, exchange.client_first().as_bytes());
            }
            11 => {
                let exchange = scram
                    .as_mut()
                    .ok_or_else(|| violation("SASL continue before SASL start"))?;
                let server_first = String::from_utf8_lossy(fields.remaining()).into_owned();
                outbox.sasl_response(exchange.client_final(&server_first)?.as_bytes());
            }
            12 => {
                let exchange = scram
                    .as_ref()
                    .ok_or_else(|| violation("SASL final before SASL start"))?;
                return exchange.verify_server_final(&String::from_utf8_lossy(fields.remaining()));
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    format!(
                        "authentication method {other} (Kerberos, GSSAPI, SSPI) is not supported"
                    ),
                ));
            }
        }
        self.send(&outbox)
    }

    /// Whether the session is outside any transaction, as it must be between
    /// calls of the store.
    pub fn is_idle(&self) -> bool {
        self.status == b'I'
    }

    /// Runs one statement with text parameters (`None` is NULL) and returns
    /// its rows. After a server error the session has been brought back to
    /// `ReadyForQuery`, so it stays usable unless the error is fatal.
    pub fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Rows, PgError> {
        let mut outbox = Outbox::default();
        outbox.parse(sql);
        outbox.bind(params)?;
        outbox.execute();
        outbox.sync();
        self.send(&outbox)?;
        let mut result = Rows::default();
        let mut failure = None;
        loop {
            let message = read_message(&mut self.stream)?;
            match message.kind {
                b'D' => result.rows.push(data_row(&message)?),
                b'C' => result.affected = affected(&message)?,
                b'E' => {
                    let error = server_error(&message)?;
                    if matches!(error.severity.as_str(), "FATAL" | "PANIC") {
                        return Err(PgError::Server(error));
                    }
                    failure = Some(error);
                }
                b'Z' => {
                    self.status = ready_status(&message)?;
                    return match failure {
                        Some(error) => Err(PgError::Server(error)),
                        None => Ok(result),
                    };
                }
                // ParseComplete, BindComplete, RowDescription, NoData,
                // EmptyQueryResponse, PortalSuspended, NoticeResponse,
                // ParameterStatus, NotificationResponse.
                b'1' | b'2' | b'T' | b'n' | b'I' | b's' | b'N' | b'S' | b'A' => {}
                other => return Err(unexpected(other).into()),
            }
        }
    }

    fn send(&mut self, outbox: &Outbox) -> io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(outbox.bytes())?;
        stream.flush()
    }
}

impl<S: Read + Write> Drop for PgConnection<S> {
    /// Says goodbye so the server logs a clean disconnect rather than an EOF.
    fn drop(&mut self) {
        let mut outbox = Outbox::default();
        outbox.terminate();
        let _ = self.send(&outbox);
    }
}

fn ready_status(message: &Message) -> io::Result<u8> {
    match message.body.as_slice() {
        [status @ (b'I' | b'T' | b'E')] => Ok(*status),
        _ => Err(violation("malformed ReadyForQuery")),
    }
}

fn data_row(message: &Message) -> io::Result<Vec<Option<Vec<u8>>>> {
    let mut fields = message.fields();
    let columns = fields.i16()?;
    (0..columns)
        .map(|_| match fields.i32()? {
            -1 => Ok(None),
            len => {
                let len = usize::try_from(len).map_err(|_| violation("negative column length"))?;
                Ok(Some(fields.bytes(len)?.to_vec()))
            }
        })
        .collect()
}

/// The row count at the end of a command tag (`INSERT 0 1`, `UPDATE 3`, …);
/// tags without one (`BEGIN`, `CREATE TABLE`) count as zero.
fn affected(message: &Message) -> io::Result<u64> {
    let tag = message.fields().cstr()?;
    Ok(tag
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

fn server_error(message: &Message) -> io::Result<ServerError> {
    let mut fields = message.fields();
    let mut error = ServerError::default();
    loop {
        match fields.bytes(1)? {
            [0] => return Ok(error),
            [b'V'] => error.severity = fields.cstr()?,
            [b'S'] if error.severity.is_empty() => error.severity = fields.cstr()?,
            [b'C'] => error.code = fields.cstr()?,
            [b'M'] => error.message = fields.cstr()?,
            _ => {
                fields.cstr()?;
            }
        }
    }
}

fn unexpected(kind: u8) -> io::Error {
    violation(format!("unexpected message type {:?}", kind as char))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_connection_string;

    /// A session with the test server, as the store's tests use it too.
    pub(crate) fn connect() -> PgConnection<TcpStream> {
        let params = parse_connection_string(crate::tests::CONNECTION_STRING).expect("valid");
        PgConnection::open(&params, Duration::from_secs(5)).expect("the test server is up")
    }

    fn text(rows: &Rows) -> Vec<Vec<Option<String>>> {
        let cell =
            |c: &Option<Vec<u8>>| c.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        rows.rows
            .iter()
            .map(|row| row.iter().map(cell).collect())
            .collect()
    }

    #[test]
    fn statements_bind_parameters_and_return_text_rows() {
        let mut conn = connect();
        let sql = "SELECT $1::text, $2::int + 1, $3::text IS NULL FROM generate_series(1, 2)";
        let rows = conn
            .execute(sql, &[Some("it's; DROP TABLE x --"), Some("41"), None])
            .expect("runs");
        let row = vec![
            Some("it's; DROP TABLE x --".into()),
            Some("42".into()),
            Some("t".into()),
        ];
        assert_eq!(text(&rows), vec![row.clone(), row]);
        assert_eq!(rows.affected, 2);
        assert!(conn.is_idle());
    }

    #[test]
    fn server_errors_leave_the_session_usable() {
        let mut conn = connect();
        let cases: [(&str, &[Option<&str>], &str); 4] = [
            ("SELEC 1", &[], "42601"),
            ("SELECT 1/0", &[], "22012"),
            ("SELECT $1::int", &[Some("x")], "22P02"),
            ("SELECT $1::int", &[], "08P01"),
        ];
        for (sql, params, code) in cases {
            match conn.execute(sql, params) {
                Err(PgError::Server(err)) => {
                    assert_eq!((err.severity.as_str(), err.code.as_str()), ("ERROR", code))
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
        conn.execute("BEGIN", &[]).expect("begin");
        assert!(!conn.is_idle());
        assert!(conn.execute("SELECT 1/0", &[]).is_err());
        conn.execute("ROLLBACK", &[]).expect("rollback");
        assert!(conn.is_idle());
        assert_eq!(
            text(&conn.execute("SELECT 'still here'", &[]).expect("runs")),
            vec![vec![Some("still here".into())]]
        );
    }

    /// A server that answers from a script and records what the client sent.
    struct Scripted {
        replies: io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn backend(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut message = vec![kind];
        message.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        message.extend_from_slice(body);
        message
    }

    #[test]
    fn password_requests_are_answered() {
        let md5 = auth::md5_password("u", "pw", b"salt");
        let cases: [(&[u8], String); 2] =
            [(b"\0\0\0\x03", "pw".to_string()), (b"\0\0\0\x05salt", md5)];
        for (request, answer) in cases {
            let mut replies = backend(b'R', request);
            replies.extend(backend(b'R', b"\0\0\0\0"));
            replies.extend(backend(b'S', b"server_version\x0015\0"));
            replies.extend(backend(b'Z', b"I"));
            let stream = Scripted {
                replies: io::Cursor::new(replies),
                sent: Vec::new(),
            };
            let params = parse_connection_string("user=u password=pw").expect("valid");
            let conn = PgConnection::startup(stream, &params).expect("logs in");
            let sent = &conn.stream.get_ref().sent;
            let mut expected = Outbox::default();
            expected.password(&answer);
            assert!(sent.ends_with(expected.bytes()), "{answer}: sent {sent:?}");
        }
    }

    #[test]
    fn login_failures_are_reported() {
        let cases = [
            "host=127.0.0.1 user=outrig_no_such_role dbname=test",
            "host=127.0.0.1 user=postgres dbname=outrig_no_such_db",
        ];
        for raw in cases {
            let params = parse_connection_string(raw).expect("valid");
            match PgConnection::open(&params, Duration::from_secs(5)) {
                Err(PgError::Server(err)) => assert_eq!(err.severity, "FATAL", "{raw}"),
                Err(other) => panic!("{raw}: {other}"),
                Ok(_) => panic!("{raw}: logged in"),
            }
        }
    }
}
