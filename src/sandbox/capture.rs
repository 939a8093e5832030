//! Bounded output capture: keeps a head and a tail, counts what it dropped.

/// Accumulates a byte stream keeping at most `limit` bytes of head and
/// `limit` bytes of tail, so memory stays bounded whatever a command prints.
#[derive(Debug)]
pub struct BoundedCapture {
    limit: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl BoundedCapture {
    /// A capture keeping `limit` bytes at each end.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.head.len() < self.limit {
            let take = (self.limit - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        if data.is_empty() {
            return;
        }
        if data.len() >= self.limit {
            self.dropped += self.tail.len() as u64 + (data.len() - self.limit) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.limit..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.limit);
        self.dropped += overflow as u64;
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    /// Bytes dropped from the middle.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The captured text, decoded lossily, with a marker where bytes were dropped.
    pub fn into_string(self) -> (String, u64) {
        let mut out = self.head;
        if self.dropped > 0 {
            out.extend_from_slice(
                format!("\n[... {} bytes of output omitted ...]\n", self.dropped).as_bytes(),
            );
        }
        out.extend(self.tail);
        (String::from_utf8_lossy(&out).into_owned(), self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail() {
        let mut c = BoundedCapture::new(4);
        for chunk in [&b"abc"[..], b"defgh", b"ij", b"klmnopq"] {
            c.push(chunk);
        }
        assert_eq!(c.dropped(), 17 - 8);
        let (s, dropped) = c.into_string();
        assert!(s.starts_with("abcd"));
        assert!(s.ends_with("nopq"));
        assert_eq!(dropped, 9);
    }

    #[test]
    fn small_output_is_verbatim() {
        let mut c = BoundedCapture::new(100);
        c.push(b"hello");
        assert_eq!(c.into_string(), ("hello".to_string(), 0));
    }
}
