//! Files haul writes for people and programs beside the data (saved plans, run reports,
//! metrics): written whole to a temp file in the same folder and renamed, so a reader (a
//! script, node_exporter, the next `haul apply plan.json`) never sees half of one. Missing
//! folders are created; the file is readable by all (a collector often runs as another user).

use std::io::Write as _;
use std::path::Path;

pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = Pending::create(path)?;
    file.write_all(contents)?;
    file.persist()
}

/// A file being written under a temp name beside `path`, which `persist` renames into place;
/// dropped without it, nothing appears (a plan that failed half way is not saved).
pub struct Pending {
    temp: std::io::BufWriter<tempfile::NamedTempFile>,
    path: std::path::PathBuf,
}

impl Pending {
    pub fn create(path: &Path) -> std::io::Result<Pending> {
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(folder)?;
        let temp = tempfile::Builder::new().prefix(".haul-output-").suffix(".tmp").tempfile_in(folder)?;
        use std::os::unix::fs::PermissionsExt as _;
        temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
        Ok(Pending { temp: std::io::BufWriter::new(temp), path: path.to_path_buf() })
    }

    pub fn persist(self) -> std::io::Result<()> {
        let temp = self.temp.into_inner().map_err(|err| err.into_error())?;
        temp.persist(&self.path).map_err(|err| err.error)?;
        Ok(())
    }
}

impl std::io::Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// Output held back until what it says is certain, then passed on whole: a plan's rows wait
/// until their transfer's listing has ended in key order, and a listing found out of order
/// takes back what its first reading wrote (back to the last [`Held::mark`]). Held text
/// stays in memory while small and spills to a temp file (`TMPDIR`) beyond 8 MiB, so a plan
/// of a million rows does not grow memory.
pub struct Held<W: std::io::Write> {
    inner: W,
    held: std::io::BufWriter<tempfile::SpooledTempFile>,
    mark: u64,
}

/// Held text kept in memory before it spills to disk.
const HELD_IN_MEMORY: usize = 8 << 20;

impl<W: std::io::Write> Held<W> {
    pub fn new(inner: W) -> Held<W> {
        Held { inner, held: std::io::BufWriter::new(tempfile::SpooledTempFile::new(HELD_IN_MEMORY)), mark: 0 }
    }

    /// Where [`Held::take_back`] returns to.
    pub fn mark(&mut self) -> std::io::Result<()> {
        use std::io::Seek as _;
        self.held.flush()?;
        self.mark = self.held.get_mut().stream_position()?;
        Ok(())
    }

    /// Drops what was written since the mark.
    pub fn take_back(&mut self) -> std::io::Result<()> {
        use std::io::Seek as _;
        self.held.flush()?;
        let file = self.held.get_mut();
        file.set_len(self.mark)?;
        file.seek(std::io::SeekFrom::Start(self.mark))?;
        Ok(())
    }

    /// Passes everything held on to the inner writer (and flushes it).
    pub fn release(&mut self) -> std::io::Result<()> {
        use std::io::Seek as _;
        self.held.flush()?;
        let file = self.held.get_mut();
        file.seek(std::io::SeekFrom::Start(0))?;
        std::io::copy(file, &mut self.inner)?;
        file.set_len(0)?;
        file.seek(std::io::SeekFrom::Start(0))?;
        self.mark = 0;
        self.inner.flush()
    }

    /// The inner writer, after releasing what is held.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.release()?;
        Ok(self.inner)
    }
}

impl<W: std::io::Write> std::io::Write for Held<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.held.write(buf)
    }

    /// Releases: a flush is where output is meant to be seen.
    fn flush(&mut self) -> std::io::Result<()> {
        self.release()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    #[test]
    fn held_output_is_passed_on_whole_or_taken_back_to_its_mark() {
        let mut held = super::Held::new(Vec::new());
        write!(held, "head ").unwrap();
        held.mark().unwrap();
        write!(held, "first reading").unwrap();
        assert!(held.inner.is_empty(), "nothing passes before the release");
        held.take_back().unwrap();
        write!(held, "second").unwrap();
        held.release().unwrap();
        write!(held, ", then more").unwrap();
        assert_eq!(held.into_inner().unwrap(), b"head second, then more");
        // Beyond what memory holds, the same through the temp file.
        let mut held = super::Held::new(Vec::new());
        held.mark().unwrap();
        held.write_all(&vec![b'x'; super::HELD_IN_MEMORY + 10]).unwrap();
        held.take_back().unwrap();
        write!(held, "kept").unwrap();
        assert_eq!(held.into_inner().unwrap(), b"kept");
    }

    #[test]
    fn replaces_whole_creates_folders_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/folder/report.json");
        super::write(&path, b"first").unwrap();
        super::write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.json")]);
    }
}
