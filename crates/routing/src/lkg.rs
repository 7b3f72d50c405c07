//! The last-known-good snapshot on local disk. A routing instance with a state directory writes it
//! after every load from the database and then whenever the snapshot moved (at most once a
//! `write_every`), and reads it at start: while the database cannot be reached, inbound calls are
//! answered from it, so a restart during an outage still answers.
//!
//! Written to a temporary file beside it, flushed to disk, then renamed over it: a crash leaves
//! the old file or the new one, never half of one. Little-endian, checked by a CRC-64 of
//! everything before it; every count is checked against what is left of the file before anything
//! is allocated for it, so a corrupt or foreign file is refused, never believed or crashed on.
//!
//! ```text
//! magic "PEEREX ROUTING SNAPSHOT\n" (24 bytes), format version u32
//! generation i64, checked against the database at (ms since 1970) i64, written at (ms) i64
//! the database followed, str (format 3; `store::database_identity`, empty: not known)
//! trunks u32, each: name, destinations u32 × str, country code, national prefix, international prefix
//! customers u32, each: id (16 bytes), trunk index u16 (0xFFFF: none), app removed u8
//! numbers u32, each: E.164 digits u64, state | (customer index + 1) << 4 u32
//! CRC-64/XZ of all of the above u64
//! ```
//! (str: length u32, UTF-8 bytes.) The numbers come in the snapshot's shard order (formats 2 and
//! 3); format 1 had them in key order and is read the same way. Formats 1 and 2 do not say which
//! database they came from, and are read as from the one followed (a peerex upgraded during an
//! outage keeps answering from the file its predecessor wrote). Read back in big blocks straight into the
//! snapshot's shards, sized from the count first: nothing is allocated per number, and no copy of
//! the numbers is held beside the snapshot (10 million: about a second).

use crate::snapshot::{SavedCustomer, Snapshot, Trunk};
use domain::trunk::NumberingRule;
use domain::CustomerId;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 24] = b"PEEREX ROUTING SNAPSHOT\n";
const VERSION: u32 = 3;
/// The oldest format read (1: the same records, in key order).
const OLDEST: u32 = 1;
const CRC: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_XZ);
/// Longest string field (trunk names and SIP URIs are far shorter).
const MAX_STR: u32 = 4096;
/// E.164 numbers have at most 15 digits.
const MAX_KEY: u64 = 999_999_999_999_999;
/// The file's name in the state directory.
pub const FILE_NAME: &str = "routing-snapshot.bin";

/// A snapshot read back from the file.
pub struct Saved {
    pub snapshot: Snapshot,
    /// When it was last checked against the database (ms since 1970).
    pub synced_ms: i64,
    pub written_ms: i64,
    pub numbers: usize,
    /// The database followed when it was written (`store::database_identity`); `None` when the
    /// file does not say (formats 1 and 2, or written without it).
    pub database: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LkgError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a peerex routing snapshot (it does not start with peerex's marker)")]
    Foreign { path: PathBuf },
    #[error("{path} is a routing snapshot of format {found}; this peerex reads formats {OLDEST} to {VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("{path} is corrupt: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path} was written following the database {written}, not {followed}, which this instance follows (was the state directory copied from another deployment?)")]
    OtherDatabase { path: PathBuf, written: String, followed: String },
}

/// Adds the bytes written through it to the CRC.
struct Summing<W> {
    inner: W,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
}

impl<W: Write> Summing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.digest.update(bytes);
        self.inner.write_all(bytes)
    }
    fn str(&mut self, s: &str) -> std::io::Result<()> {
        self.put(&(s.len() as u32).to_le_bytes())?;
        self.put(s.as_bytes())
    }
}

/// Writes `snapshot`, last checked against `database` (`store::database_identity`; empty: not
/// known) at `synced_ms`, to `path` atomically (temporary file, fsync, rename, fsync of the
/// directory); returns the bytes written. Blocking: run it off the async threads.
pub fn write(
    path: &Path,
    snapshot: &Snapshot,
    synced_ms: i64,
    database: &str,
) -> std::io::Result<u64> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let bytes = match write_to(&tmp, snapshot, synced_ms, database) {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself must reach the disk, or a power cut may bring back the old file.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(bytes)
}

fn write_to(tmp: &Path, s: &Snapshot, synced_ms: i64, database: &str) -> std::io::Result<u64> {
    let file = std::fs::File::create(tmp)?;
    let mut w = Summing { inner: BufWriter::with_capacity(1 << 20, file), digest: CRC.digest() };
    w.put(MAGIC)?;
    w.put(&VERSION.to_le_bytes())?;
    w.put(&s.generation.to_le_bytes())?;
    w.put(&synced_ms.to_le_bytes())?;
    w.put(&crate::now_ms().to_le_bytes())?;
    w.str(database)?;
    w.put(&(s.trunks().len() as u32).to_le_bytes())?;
    for t in s.trunks() {
        w.str(&t.name)?;
        w.put(&(t.destinations.len() as u32).to_le_bytes())?;
        for d in &t.destinations {
            w.str(d)?;
        }
        w.str(t.numbering.country_code())?;
        w.str(t.numbering.national_prefix())?;
        w.str(t.numbering.international_prefix())?;
    }
    let customers = s.saved_customers();
    w.put(&(customers.len() as u32).to_le_bytes())?;
    for (id, trunk, app_removed) in &customers {
        w.put(id.as_uuid().as_bytes())?;
        w.put(&trunk.unwrap_or(u16::MAX).to_le_bytes())?;
        w.put(&[u8::from(*app_removed)])?;
    }
    w.put(&(s.len() as u32).to_le_bytes())?;
    let mut buf: Vec<u8> = Vec::with_capacity(12 * 4096);
    let mut result = Ok(());
    s.for_each_entry(|key, value| {
        buf.extend_from_slice(&key.to_le_bytes());
        buf.extend_from_slice(&value.to_le_bytes());
        if buf.len() >= 12 * 4096 && result.is_ok() {
            result = w.put(&buf);
            buf.clear();
        }
    });
    result?;
    w.put(&buf)?;
    let sum = w.digest.finalize();
    let mut inner = w.inner;
    inner.write_all(&sum.to_le_bytes())?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    file.metadata().map(|m| m.len())
}

/// Reads through the CRC, counting what is left of the file.
struct Checked<R> {
    inner: R,
    digest: crc::Digest<'static, u64, crc::Table<16>>,
    left: u64,
    path: PathBuf,
}

impl<R: Read> Checked<R> {
    fn corrupt(&self, why: impl Into<String>) -> LkgError {
        LkgError::Corrupt { path: self.path.clone(), why: why.into() }
    }
    fn take(&mut self, buf: &mut [u8]) -> Result<(), LkgError> {
        // The last 8 bytes are the checksum: the contents end before them.
        if (buf.len() as u64) > self.left.saturating_sub(8) {
            return Err(self.corrupt("it ends too soon"));
        }
        self.inner.read_exact(buf).map_err(|_| self.corrupt("it ends too soon"))?;
        self.digest.update(buf);
        self.left -= buf.len() as u64;
        Ok(())
    }
    fn u8(&mut self) -> Result<u8, LkgError> {
        let mut b = [0; 1];
        self.take(&mut b)?;
        Ok(b[0])
    }
    fn u16(&mut self) -> Result<u16, LkgError> {
        let mut b = [0; 2];
        self.take(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, LkgError> {
        let mut b = [0; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn i64(&mut self) -> Result<i64, LkgError> {
        let mut b = [0; 8];
        self.take(&mut b)?;
        Ok(i64::from_le_bytes(b))
    }
    fn str(&mut self, what: &str) -> Result<String, LkgError> {
        let len = self.u32()?;
        if len > MAX_STR {
            return Err(self.corrupt(format!("{what} is {len} bytes long")));
        }
        let mut b = vec![0; len as usize];
        self.take(&mut b)?;
        String::from_utf8(b).map_err(|_| self.corrupt(format!("{what} is not UTF-8")))
    }
    /// A count of items of at least `size` bytes each, checked against what is left.
    fn count(&mut self, what: &str, size: u64) -> Result<usize, LkgError> {
        let n = self.u32()?;
        if u64::from(n).saturating_mul(size) > self.left {
            return Err(self.corrupt(format!("it says {n} {what}, more than the file holds")));
        }
        Ok(n as usize)
    }
}

/// Reads the file at `path`, checking all of it. A missing file is `Io` with `NotFound`.
/// Blocking: run it off the async threads.
pub fn read(path: &Path) -> Result<Saved, LkgError> {
    let io = |source| LkgError::Io { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut r = Checked {
        inner: BufReader::with_capacity(1 << 20, file),
        digest: CRC.digest(),
        left: len,
        path: path.to_owned(),
    };
    let mut magic = [0u8; 24];
    if len < 24 + 8 || r.take(&mut magic).is_err() || &magic != MAGIC {
        return Err(LkgError::Foreign { path: path.to_owned() });
    }
    let version = r.u32()?;
    if !(OLDEST..=VERSION).contains(&version) {
        return Err(LkgError::Version { path: path.to_owned(), found: version });
    }
    let generation = r.i64()?;
    let synced_ms = r.i64()?;
    let written_ms = r.i64()?;
    let database = match version {
        3.. => Some(r.str("the database followed")?).filter(|d| !d.is_empty()),
        _ => None,
    };
    let trunk_count = r.count("trunks", 4 * 5)?;
    let mut trunks = Vec::with_capacity(trunk_count);
    for _ in 0..trunk_count {
        let name = r.str("a trunk name")?;
        let n = r.count("destinations", 4)?;
        let destinations = (0..n).map(|_| r.str("a destination")).collect::<Result<_, _>>()?;
        let cc = r.str("a country code")?;
        let np = r.str("a national prefix")?;
        let ip = r.str("an international prefix")?;
        let numbering = NumberingRule::new(&cc, &np, &ip)
            .map_err(|e| r.corrupt(format!("trunk {name:?}: {e}")))?;
        trunks.push(Arc::new(Trunk { name, destinations, numbering }));
    }
    let customer_count = r.count("customers", 19)?;
    let mut customers: Vec<SavedCustomer> = Vec::with_capacity(customer_count);
    for _ in 0..customer_count {
        let mut id = [0u8; 16];
        r.take(&mut id)?;
        let trunk = r.u16()?;
        let app_removed = r.u8()?;
        let trunk = match trunk {
            u16::MAX => None,
            t if (t as usize) < trunks.len() => Some(t),
            t => return Err(r.corrupt(format!("a customer's trunk {t} does not exist"))),
        };
        if app_removed > 1 {
            return Err(r.corrupt("a customer's app-removed flag is neither 0 nor 1"));
        }
        customers.push((
            CustomerId::from_uuid(uuid::Uuid::from_bytes(id)),
            trunk,
            app_removed == 1,
        ));
    }
    let n = r.count("numbers", 12)?;
    let customer_count = customers.len();
    let mut snapshot = Snapshot::from_parts(n, customers, trunks, generation);
    let mut bytes = vec![0u8; 12 * 8192];
    let mut left = n;
    while left > 0 {
        let now = left.min(8192);
        r.take(&mut bytes[..now * 12])?;
        for e in bytes[..now * 12].chunks_exact(12) {
            let key = u64::from_le_bytes(e[..8].try_into().unwrap_or_default());
            let value = u32::from_le_bytes(e[8..].try_into().unwrap_or_default());
            if key == 0
                || key > MAX_KEY
                || value & 0xF >= Snapshot::STATES
                || (value >> 4) as usize > customer_count
            {
                return Err(r.corrupt(format!("number {key} (value {value:#x}) is out of place")));
            }
            if !snapshot.add_saved(key, value) {
                return Err(r.corrupt(format!("number {key} is in it twice")));
            }
        }
        left -= now;
    }
    if r.left != 8 {
        return Err(r.corrupt(format!("{} bytes after the numbers", r.left.saturating_sub(8))));
    }
    let computed = r.digest.finalize();
    let mut trailer = [0u8; 8];
    r.inner.read_exact(&mut trailer).map_err(io)?;
    if u64::from_le_bytes(trailer) != computed {
        return Err(LkgError::Corrupt {
            path: path.to_owned(),
            why: "its checksum does not match its contents".into(),
        });
    }
    snapshot.finish_load();
    Ok(Saved { snapshot, synced_ms, written_ms, numbers: n, database })
}

/// [`read`], refusing a file that says it was written following another database than
/// `followed` (`store::database_identity`; empty: no check). A file that does not say is read.
pub fn read_following(path: &Path, followed: &str) -> Result<Saved, LkgError> {
    let saved = read(path)?;
    match &saved.database {
        Some(written) if !followed.is_empty() && written != followed => {
            Err(LkgError::OtherDatabase {
                path: path.to_owned(),
                written: written.clone(),
                followed: followed.to_owned(),
            })
        }
        _ => Ok(saved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::routing::{Direction, NumberFacts, RoutingCustomer};
    use domain::trunk::ZoomTrunk;
    use domain::{NumberState, PhoneNumber};

    /// A snapshot with numbers loaded, then some changed, removed and added.
    fn snapshot(numbers: u64) -> (Snapshot, CustomerId) {
        let c = CustomerId::new();
        let trunk = ZoomTrunk::parse(
            "zoom-uk",
            &["sip:zoom-a.example:5061;transport=tls", "sip:zoom-b.example"],
            NumberingRule::new("44", "0", "00").unwrap(),
            time::OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let mut s = Snapshot::default();
        s.set_customers(
            vec![
                RoutingCustomer { id: c, trunk: Some("zoom-uk".into()), app_removed: false },
                RoutingCustomer { id: CustomerId::new(), trunk: None, app_removed: true },
            ],
            vec![trunk],
        );
        let facts = |n: u64, state| NumberFacts {
            e164: PhoneNumber::from_trusted(format!("+{n}")),
            state,
            customer: Some(c),
            reason: None,
        };
        let page: Vec<NumberFacts> =
            (0..numbers).map(|i| facts(442071000000 + i, NumberState::Active)).collect();
        s.load(&page);
        s.finish_load();
        s.apply(442071000001, Some(&facts(442071000001, NumberState::Suspended)));
        s.apply(442071000002, None);
        s.apply(449999999999, Some(&facts(449999999999, NumberState::Active)));
        s.generation = 4242;
        (s, c)
    }

    fn inbound(s: &Snapshot, n: u64) -> u16 {
        s.decide(Direction::Inbound, None, Some(n), None).status
    }

    #[test]
    fn a_written_snapshot_reads_back_deciding_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (s, c) = snapshot(20_000);
        let site_a = "postgres://replica.site-a:5432/peerex";
        let bytes = write(&path, &s, 1_700_000_000_000, site_a).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let saved = read_following(&path, site_a).map_err(|e| e.to_string()).unwrap();
        assert_eq!((saved.synced_ms, saved.numbers), (1_700_000_000_000, 20_000));
        assert_eq!(saved.database.as_deref(), Some(site_a));
        assert_eq!(saved.snapshot.generation, 4242);
        let back = saved.snapshot;
        for n in
            [442071000000, 442071000001, 442071000002, 442071000003, 449999999999, 442071999999]
        {
            assert_eq!(inbound(&back, n), inbound(&s, n), "{n}");
        }
        assert_eq!(inbound(&back, 442071000001), 480);
        assert_eq!(inbound(&back, 442071000002), 404);
        let a = back.decide(Direction::Inbound, None, Some(442071000000), None);
        assert_eq!(a.customer, Some(c));
        let t = a.trunk.unwrap();
        assert_eq!(t.destinations, ["sip:zoom-a.example:5061;transport=tls", "sip:zoom-b.example"]);
        assert_eq!(t.numbering, NumberingRule::new("44", "0", "00").unwrap());
        // Nothing is left beside it.
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn corrupt_cut_short_foreign_and_other_format_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.bin");
        let (s, _) = snapshot(1_000);
        write(&path, &s, 1, "").unwrap();
        let good = std::fs::read(&path).unwrap();
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            read(&path).err().map(|e| e.to_string()).unwrap_or_default()
        };
        // One bit flipped anywhere: in a number, in the header, in the checksum.
        for at in [good.len() / 2, 30, good.len() - 3] {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            let e = refused(&bad);
            assert!(e.contains("is corrupt"), "byte {at}: {e}");
        }
        assert!(refused(&good[..good.len() - 100]).contains("is corrupt"));
        let mut longer = good.clone();
        longer.extend_from_slice(b"junk");
        assert!(refused(&longer).contains("is corrupt"));
        assert!(refused(b"#!/bin/sh\necho hello, this is not a snapshot at all\n")
            .contains("is not a peerex routing snapshot"));
        assert!(refused(b"").contains("is not a peerex routing snapshot"));
        let mut v4 = good.clone();
        v4[24..28].copy_from_slice(&4u32.to_le_bytes());
        assert!(refused(&v4).contains("format 4; this peerex reads formats 1 to 3"));
        // A count far beyond the file is refused before anything is allocated for it.
        let mut huge = good.clone();
        let at = 24 + 4 + 8 + 8 + 8 + 4; // the trunk count, after an empty database name
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(refused(&huge).contains("more than the file holds"));
        std::fs::write(&path, &good).unwrap();
        assert!(read(&path).is_ok());
    }

    /// The checksum recomputed after a test changed the contents.
    fn reseal(bytes: &mut [u8]) {
        let end = bytes.len() - 8;
        let sum = CRC.checksum(&bytes[..end]);
        bytes[end..].copy_from_slice(&sum.to_le_bytes());
    }

    /// 100,000 numbers of every length, many customers, changed and removed ones: every one comes
    /// back with its value, and nothing else does.
    #[test]
    fn a_roundtrip_of_100k_numbers_reproduces_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut s = Snapshot::default();
        let ids: Vec<CustomerId> = (0..1_000).map(|_| CustomerId::new()).collect();
        s.set_customers(
            ids.iter()
                .map(|c| RoutingCustomer { id: *c, trunk: None, app_removed: false })
                .collect(),
            vec![],
        );
        let states = [NumberState::Active, NumberState::Suspended, NumberState::Aging];
        let page: Vec<NumberFacts> = (0..100_000u64)
            .map(|i| {
                // Lengths 9 to 15 digits, in ranges of 1,000.
                let n = 10u64.pow(8 + (i / 1_000 % 7) as u32) + (i / 7_000) * 100_000 + i % 1_000;
                NumberFacts {
                    e164: PhoneNumber::from_trusted(format!("+{n}")),
                    state: states[(i % 3) as usize],
                    customer: (i % 5 != 0).then(|| ids[(i % 1_000) as usize]),
                    reason: None,
                }
            })
            .collect();
        s.load(&page);
        s.finish_load();
        for (i, f) in page.iter().enumerate().step_by(97) {
            let k = crate::snapshot::e164_key(f.e164.as_str()).unwrap();
            s.apply(k, (i % 2 == 0).then(|| &page[(i + 1) % page.len()]));
        }
        s.generation = 7;
        let mut entries = Vec::new();
        s.for_each_entry(|k, v| entries.push((k, v)));
        write(&path, &s, 1, "").unwrap();
        let saved = read(&path).map_err(|e| e.to_string()).unwrap();
        assert_eq!(saved.numbers, s.len());
        let back = saved.snapshot;
        assert_eq!((back.len(), back.generation), (s.len(), 7));
        let mut again = Vec::new();
        back.for_each_entry(|k, v| again.push((k, v)));
        entries.sort_unstable();
        again.sort_unstable();
        assert_eq!(again, entries);
        for f in &page {
            let k = crate::snapshot::e164_key(f.e164.as_str()).unwrap();
            let (a, b) = (
                back.decide(Direction::Inbound, None, Some(k), None),
                s.decide(Direction::Inbound, None, Some(k), None),
            );
            assert_eq!((a.status, a.customer), (b.status, b.customer), "{k}");
        }
    }

    /// The file says which database it was written following: read following another, it is
    /// refused, naming both; following the same one, or with no database to check against, it is
    /// read.
    #[test]
    fn a_file_written_following_another_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (s, _) = snapshot(1_000);
        write(&path, &s, 1, "postgres://staging-db:5432/peerex").unwrap();
        let e = read_following(&path, "postgres://replica.site-a:5432/peerex")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("written following the database postgres://staging-db:5432/peerex")
                && e.contains("not postgres://replica.site-a:5432/peerex"),
            "{e}"
        );
        assert!(read_following(&path, "postgres://staging-db:5432/peerex").is_ok());
        assert!(read_following(&path, "").is_ok(), "nothing to check against");
        // Written without knowing the database: read whatever is followed.
        write(&path, &s, 1, "").unwrap();
        let saved = read_following(&path, "postgres://replica.site-a:5432/peerex").unwrap();
        assert_eq!(saved.database, None);
    }

    /// Files of formats 1 (numbers in key order) and 2 (no database named), from earlier peerex
    /// versions, are read, whatever database is followed; a file giving a number twice is refused.
    #[test]
    fn format_1_and_2_files_are_read_and_a_number_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (s, _) = snapshot(5_000);
        write(&path, &s, 1, "").unwrap();
        // Format 2: format 3 without the database's name (here empty: its length's 4 bytes).
        let at = 24 + 4 + 8 + 8 + 8;
        let mut good = std::fs::read(&path).unwrap();
        assert_eq!(good[at..at + 4], [0; 4]);
        good.drain(at..at + 4);
        good[24..28].copy_from_slice(&2u32.to_le_bytes());
        reseal(&mut good);
        std::fs::write(&path, &good).unwrap();
        let v2 = read_following(&path, "postgres://replica.site-a:5432/peerex").unwrap();
        assert_eq!((v2.database, v2.numbers), (None, s.len()));
        for n in [442071000000, 442071000001, 442071000002, 449999999999] {
            assert_eq!(inbound(&v2.snapshot, n), inbound(&s, n), "{n}");
        }
        let numbers = good.len() - 8 - s.len() * 12;
        let mut v1 = good.clone();
        v1[24..28].copy_from_slice(&1u32.to_le_bytes());
        let mut records: Vec<[u8; 12]> =
            v1[numbers..numbers + s.len() * 12].chunks(12).map(|c| c.try_into().unwrap()).collect();
        records.sort_by_key(|r| u64::from_le_bytes(r[..8].try_into().unwrap()));
        v1[numbers..numbers + s.len() * 12].copy_from_slice(&records.concat());
        reseal(&mut v1);
        std::fs::write(&path, &v1).unwrap();
        let back = read(&path).map_err(|e| e.to_string()).unwrap().snapshot;
        for n in [442071000000, 442071000001, 442071000002, 442071004999, 449999999999] {
            assert_eq!(inbound(&back, n), inbound(&s, n), "{n}");
        }
        let mut twice = good.clone();
        twice.copy_within(numbers..numbers + 12, numbers + 12 * 100);
        reseal(&mut twice);
        std::fs::write(&path, &twice).unwrap();
        let e = read(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("is in it twice"), "{e}");
    }
}
