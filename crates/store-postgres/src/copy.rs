//! PostgreSQL's binary `COPY ... TO STDOUT` format, read as it arrives: the routing snapshot's full
//! load takes every routed number in one statement this way (see `PgStore::routing_numbers_each`).
//!
//! Hand-written on purpose: the format is small and fixed (a header, then tuples of length-prefixed
//! fields, then a trailer; PostgreSQL's documentation of COPY, "Binary Format"), sqlx hands COPY's
//! data over as raw bytes, and through sqlx's row decoding the 10,000,000-number load read for
//! 5.7 s of its 5 s goal. The server streams while this side parses, so the two overlap.

/// The signature every binary COPY starts with.
const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The longest field (or header extension) read: the load's fields are a few dozen bytes, and a
/// wild length would otherwise keep the rest of the stream in memory before its end showed it wrong.
const MAX_FIELD: i32 = 1 << 20;

/// Why a COPY stream could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CopyError(pub(crate) String);

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "binary COPY: {}", self.0)
    }
}

impl std::error::Error for CopyError {}

/// Splits a binary COPY stream of `N`-column tuples into rows, whatever its chunks' boundaries.
pub(crate) struct BinaryCopy<const N: usize> {
    /// Bytes of an unfinished header or tuple carried to the next chunk.
    carry: Vec<u8>,
    header: bool,
    trailer: bool,
}

impl<const N: usize> Default for BinaryCopy<N> {
    fn default() -> Self {
        BinaryCopy { carry: Vec::new(), header: false, trailer: false }
    }
}

/// A field: its bytes, or `None` for NULL.
pub(crate) type Field<'a> = Option<&'a [u8]>;

fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if b.len() < n {
        return None;
    }
    let (head, tail) = b.split_at(n);
    *b = tail;
    Some(head)
}

fn int<const W: usize>(b: &mut &[u8]) -> Option<[u8; W]> {
    take(b, W).map(|s| s.try_into().expect("took W bytes"))
}

impl<const N: usize> BinaryCopy<N> {
    /// Hands every tuple complete with `chunk` to `row`, keeping the rest for the next chunk.
    pub(crate) fn feed<E: From<CopyError>>(
        &mut self,
        chunk: &[u8],
        row: &mut impl FnMut(&[Field<'_>; N]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.carry.is_empty() {
            let used = self.parse(chunk, row)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut data = std::mem::take(&mut self.carry);
            data.extend_from_slice(chunk);
            let used = self.parse(&data, row)?;
            data.drain(..used);
            self.carry = data;
        }
        Ok(())
    }

    /// Checks the stream ended where it should: after the trailer, with nothing left over.
    pub(crate) fn finish(&self) -> Result<(), CopyError> {
        if !self.trailer || !self.carry.is_empty() {
            return Err(CopyError(format!(
                "the stream ended {} ({} bytes unread)",
                if self.trailer { "with bytes after its trailer" } else { "before its trailer" },
                self.carry.len()
            )));
        }
        Ok(())
    }

    /// Parses what is complete in `data`; returns how many bytes that was.
    fn parse<E: From<CopyError>>(
        &mut self,
        data: &[u8],
        row: &mut impl FnMut(&[Field<'_>; N]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut rest = data;
        if !self.header {
            let mut cur = rest;
            let (Some(sig), Some(flags), Some(ext)) =
                (take(&mut cur, 11), int::<4>(&mut cur), int::<4>(&mut cur))
            else {
                return Ok(0);
            };
            if sig != SIGNATURE {
                return Err(
                    CopyError("the stream does not start with PGCOPY's signature".into()).into()
                );
            }
            // Bits 16-31 are critical: a reader that does not know one must stop (bit 16: OIDs).
            if u32::from_be_bytes(flags) & 0xffff_0000 != 0 {
                return Err(
                    CopyError("the header sets a flag this reader does not know".into()).into()
                );
            }
            let ext = u32::from_be_bytes(ext);
            if ext > MAX_FIELD as u32 {
                return Err(CopyError(format!("a header extension of {ext} bytes")).into());
            }
            if take(&mut cur, ext as usize).is_none() {
                return Ok(0);
            }
            self.header = true;
            rest = cur;
        }
        while !rest.is_empty() {
            if self.trailer {
                return Err(CopyError("bytes after the trailer".into()).into());
            }
            let mut cur = rest;
            let Some(count) = int::<2>(&mut cur) else { break };
            let count = i16::from_be_bytes(count);
            if count == -1 {
                self.trailer = true;
                rest = cur;
                continue;
            }
            if count as usize != N {
                return Err(CopyError(format!("a tuple of {count} fields, {N} expected")).into());
            }
            let mut fields: [Field<'_>; N] = [None; N];
            let mut complete = true;
            for f in &mut fields {
                let Some(len) = int::<4>(&mut cur) else {
                    complete = false;
                    break;
                };
                let len = match i32::from_be_bytes(len) {
                    -1 => continue,
                    len if (0..=MAX_FIELD).contains(&len) => len,
                    len => return Err(CopyError(format!("a field of length {len}")).into()),
                };
                match take(&mut cur, len as usize) {
                    Some(v) => *f = Some(v),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if !complete {
                break;
            }
            row(&fields)?;
            rest = cur;
        }
        Ok(data.len() - rest.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as the format's documentation lays it out: the header with an extension area, then
    /// tuples (one with a NULL and an empty field), then the trailer.
    fn stream(rows: &[[Option<&[u8]>; 2]]) -> Vec<u8> {
        let mut s = SIGNATURE.to_vec();
        s.extend_from_slice(&0u32.to_be_bytes());
        s.extend_from_slice(&3u32.to_be_bytes());
        s.extend_from_slice(b"ext");
        for r in rows {
            s.extend_from_slice(&2i16.to_be_bytes());
            for f in r {
                match f {
                    Some(v) => {
                        s.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        s.extend_from_slice(v);
                    }
                    None => s.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        s.extend_from_slice(&(-1i16).to_be_bytes());
        s
    }

    fn read(chunks: &[&[u8]]) -> Result<Vec<Vec<Option<Vec<u8>>>>, CopyError> {
        let mut copy = BinaryCopy::<2>::default();
        let mut out = Vec::new();
        for c in chunks {
            copy.feed(c, &mut |r: &[Field<'_>; 2]| -> Result<(), CopyError> {
                out.push(r.iter().map(|f| f.map(<[u8]>::to_vec)).collect());
                Ok(())
            })?;
        }
        copy.finish()?;
        Ok(out)
    }

    #[test]
    fn every_row_is_read_whatever_the_chunks_boundaries() {
        let rows: [[Option<&[u8]>; 2]; 3] =
            [[Some(b"+15550000001"), None], [Some(b""), Some(b"reason")], [None, None]];
        let data = stream(&rows);
        let want: Vec<Vec<Option<Vec<u8>>>> =
            rows.iter().map(|r| r.iter().map(|f| f.map(<[u8]>::to_vec)).collect()).collect();
        assert_eq!(read(&[&data]).unwrap(), want);
        for a in 0..data.len() {
            for b in a..data.len() {
                let got = read(&[&data[..a], &data[a..b], &data[b..]]).unwrap();
                assert_eq!(got, want, "split at {a} and {b}");
            }
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(read(&bytes).unwrap(), want);
    }

    #[test]
    fn a_cut_off_or_foreign_stream_is_an_error_not_fewer_rows() {
        let data = stream(&[[Some(b"a"), Some(b"b")]]);
        for cut in 0..data.len() {
            assert!(read(&[&data[..cut]]).is_err(), "cut at {cut} read as complete");
        }
        let mut extra = data.clone();
        extra.push(0);
        assert!(read(&[&extra]).is_err());
        let mut foreign = data.clone();
        foreign[0] = b'X';
        assert_eq!(
            read(&[&foreign]),
            Err(CopyError("the stream does not start with PGCOPY's signature".into()))
        );
        let mut flagged = data.clone();
        flagged[11] = 1; // bit 24 of the flags
        assert_eq!(
            read(&[&flagged]),
            Err(CopyError("the header sets a flag this reader does not know".into()))
        );
        let body = 11 + 8 + 3 + 2; // signature, flags, extension length and area, field count
        for (len, what) in
            [(-2i32, "a field of length -2"), (MAX_FIELD + 1, "a field of length 1048577")]
        {
            let mut wild = data.clone();
            wild[body..body + 4].copy_from_slice(&len.to_be_bytes());
            assert_eq!(read(&[&wild]), Err(CopyError(what.into())));
        }
        let mut three = stream(&[]);
        let trailer = three.split_off(three.len() - 2);
        three.extend_from_slice(&3i16.to_be_bytes());
        three.extend_from_slice(&trailer);
        assert_eq!(read(&[&three]), Err(CopyError("a tuple of 3 fields, 2 expected".into())));
    }
}
