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

#[cfg(test)]
mod tests {
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
