//! Files haul writes for people and programs beside the data (saved plans, run reports,
//! metrics): written whole to a temp file in the same folder and renamed, so a reader (a
//! script, node_exporter, the next `haul apply plan.json`) never sees half of one. Missing
//! folders are created; the file is readable by all (a collector often runs as another user).

use std::io::Write as _;
use std::path::Path;

pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(folder)?;
    let mut temp = tempfile::Builder::new().prefix(".haul-output-").suffix(".tmp").tempfile_in(folder)?;
    temp.write_all(contents)?;
    use std::os::unix::fs::PermissionsExt as _;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
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
