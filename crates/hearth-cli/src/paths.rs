//! The data directory and the daemon's files in it.
//!
//! ```text
//! <data dir>/            0700
//!   store/               the node's encrypted store (created by `hearth init`)
//!   api-token            0600  the local API's bearer token (64 hex characters)
//!   daemon.json          0600  written by `hearth up` while it runs: port and pid
//! ```

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::api::ErrorCode;
use crate::failure::Failure;

/// What `hearth up` writes to `daemon.json` while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The API's port on 127.0.0.1.
    pub port: u16,
    /// The daemon's process id.
    pub pid: u32,
    /// The daemon's version.
    pub version: String,
}

/// A Hearth data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory given (`--data-dir` / `HEARTH_DIR`), or the platform's data directory
    /// followed by `hearth`.
    pub fn resolve(given: Option<PathBuf>) -> Result<DataDir, Failure> {
        let root = match given {
            Some(p) => p,
            None => dirs::data_dir().map(|d| d.join("hearth")).ok_or_else(|| {
                Failure::new(
                    ErrorCode::NoProfile,
                    "this system has no data directory for applications",
                )
                .hint("pass --data-dir <DIR> or set HEARTH_DIR")
            })?,
        };
        Ok(DataDir { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the store lives.
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The token file.
    pub fn token_file(&self) -> PathBuf {
        self.root.join("api-token")
    }

    /// The running daemon's file.
    pub fn daemon_file(&self) -> PathBuf {
        self.root.join("daemon.json")
    }

    /// Creates the directory (0700) if it is missing. An existing directory keeps its mode
    /// (it may be one the user chose, such as a home directory), with a warning if others can
    /// read it; Hearth's own files in it are private either way.
    pub fn ensure(&self) -> io::Result<()> {
        if !self.root.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.root)?;
            return fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700));
        }
        let mode = fs::metadata(&self.root)?.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} can be read by other users of this machine (mode {:o}); `chmod 700` it to keep your circles' metadata private",
                self.root.display(),
                mode & 0o777
            );
        }
        Ok(())
    }

    /// The API token, if the file exists and holds one.
    pub fn read_token(&self) -> io::Result<Option<String>> {
        match fs::read_to_string(self.token_file()) {
            Ok(s) => {
                let t = s.trim();
                if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(Some(t.to_ascii_lowercase()))
                } else {
                    Ok(None)
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The API token; a new random one (32 bytes, hex) is written first if there is none.
    pub fn ensure_token(&self) -> io::Result<String> {
        if let Some(t) = self.read_token()? {
            // Make sure an existing file is still private.
            fs::set_permissions(self.token_file(), fs::Permissions::from_mode(0o600))?;
            return Ok(t);
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        write_private(&self.token_file(), format!("{token}\n").as_bytes())?;
        Ok(token)
    }

    /// Writes `daemon.json` (0600, atomically).
    pub fn write_daemon_info(&self, info: &DaemonInfo) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(info).map_err(io::Error::other)?;
        write_private(&self.daemon_file(), &json)
    }

    /// Reads `daemon.json`, if there is one.
    pub fn read_daemon_info(&self) -> io::Result<Option<DaemonInfo>> {
        match fs::read(self.daemon_file()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes `daemon.json` if it names this process.
    pub fn remove_daemon_info(&self, pid: u32) {
        if let Ok(Some(info)) = self.read_daemon_info()
            && info.pid == pid
        {
            let _ = fs::remove_file(self.daemon_file());
        }
    }

    /// Whether a profile (store) exists here.
    pub fn has_profile(&self) -> bool {
        self.store_dir().exists()
    }
}

/// Writes a file readable by its owner only, replacing any old one atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_private_stable_and_hex() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::resolve(Some(tmp.path().join("d").join("e"))).unwrap();
        dir.ensure().unwrap();
        let mode = fs::metadata(dir.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let t = dir.ensure_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(dir.ensure_token().unwrap(), t, "an existing token is kept");
        let mode = fs::metadata(dir.token_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn daemon_info_round_trips_and_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::resolve(Some(tmp.path().to_owned())).unwrap();
        assert_eq!(dir.read_daemon_info().unwrap(), None);
        let info = DaemonInfo {
            port: 4242,
            pid: 7,
            version: "0.1.0".into(),
        };
        dir.write_daemon_info(&info).unwrap();
        assert_eq!(dir.read_daemon_info().unwrap(), Some(info));
        let mode = fs::metadata(dir.daemon_file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        dir.remove_daemon_info(8);
        assert!(
            dir.daemon_file().exists(),
            "another pid's file is left alone"
        );
        dir.remove_daemon_info(7);
        assert!(!dir.daemon_file().exists());
    }
}
