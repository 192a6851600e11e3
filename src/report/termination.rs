//! What the first two characters of HAProxy's termination state mean, in words (from
//! HAProxy's configuration manual, section 8.5).

/// The meaning of a two-character termination code, e.g. `sH` -> "server timeout while
/// waiting for response headers".
pub(super) fn meaning(code: [u8; 2]) -> String {
    if code == *b"--" {
        return "normal completion".to_owned();
    }
    let cause = match code[0] {
        b'C' => "client aborted",
        b'S' => "server aborted or refused",
        b'P' => "proxy denied or aborted (limit, deny rule or security check)",
        b'L' => "answered locally by the proxy",
        b'R' => "proxy resource exhausted",
        b'I' => "proxy internal error",
        b'D' => "killed because the server went down",
        b'U' => "killed on a backup server because an active one came up",
        b'K' => "killed by an admin",
        b'c' => "client timeout",
        b's' => "server timeout",
        b'-' => "no error",
        _ => "unknown cause",
    };
    let phase = match code[1] {
        b'R' => "while waiting for the request",
        b'Q' => "while waiting in the queue",
        b'C' => "while connecting to the server",
        b'H' => "while waiting for response headers",
        b'D' => "during data transfer",
        b'L' => "while sending the last data to the client",
        b'T' => "while tarpitted",
        b'-' => "after the transfer",
        _ => "in an unknown phase",
    };
    format!("{cause} {phase}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_sentences() {
        assert_eq!(
            meaning(*b"sH"),
            "server timeout while waiting for response headers"
        );
        assert_eq!(meaning(*b"CD"), "client aborted during data transfer");
        assert_eq!(meaning(*b"--"), "normal completion");
        assert_eq!(meaning(*b"??"), "unknown cause in an unknown phase");
    }
}
