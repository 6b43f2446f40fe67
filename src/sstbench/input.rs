//! The data a benchmark moves: a file or a directory (e.g. a datadir), generated data, or a
//! backup stream taken from a live server. Every run reads the same bytes in the same order.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::datagen::{Generator, Profile};
use super::throttle::ByteSize;

/// Where the benchmark's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// A file, or a directory walked in sorted path order (symlinks are not followed).
    Path(PathBuf),
    /// `size` bytes of generated `profile` data.
    Generate {
        size: u64,
        profile: Profile,
        seed: u64,
    },
}

impl InputSpec {
    /// Parses `--generate SIZE:PROFILE`, e.g. `256MiB:innodb`.
    pub fn parse_generate(s: &str, seed: u64) -> Result<Self, String> {
        let (size, profile) = parse_size_profile(s)?;
        Ok(InputSpec::Generate {
            size,
            profile,
            seed,
        })
    }
}

/// `SIZE:PROFILE`, e.g. `256MiB:innodb`, as (bytes, profile).
pub fn parse_size_profile(s: &str) -> Result<(u64, Profile), String> {
    let (size, profile) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: write SIZE:PROFILE, e.g. 256MiB:innodb"))?;
    let size: ByteSize = size.parse()?;
    if size.0 == 0 {
        return Err("cannot generate 0 bytes".into());
    }
    Ok((size.0, profile.parse()?))
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}: no regular files to read")]
    Empty(PathBuf),
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Prepared input: a list of files read one after the other.
#[derive(Debug)]
pub struct Input {
    /// What the data is, for reports.
    pub description: String,
    pub bytes: u64,
    files: Vec<PathBuf>,
    /// Holds generated or captured data; removed with the input.
    _scratch: Option<ScratchDir>,
}

impl Input {
    pub fn prepare(spec: &InputSpec) -> Result<Input, InputError> {
        match spec {
            InputSpec::Path(path) => Self::from_path(path),
            InputSpec::Generate {
                size,
                profile,
                seed,
            } => {
                let _span = tracing::info_span!("generate", size, %profile, seed).entered();
                let scratch = ScratchDir::new().map_err(at(&std::env::temp_dir()))?;
                let file = scratch.path.join(format!("generated-{profile}.ibd"));
                let mut out =
                    BufWriter::with_capacity(1 << 20, File::create(&file).map_err(at(&file))?);
                io::copy(&mut Generator::new(*profile, *size, *seed), &mut out)
                    .and_then(|_| out.flush())
                    .map_err(at(&file))?;
                drop(out);
                Ok(Input {
                    description: format!(
                        "generated {profile} data, {} (seed {seed})",
                        ByteSize(*size)
                    ),
                    bytes: *size,
                    files: vec![file],
                    _scratch: Some(scratch),
                })
            }
        }
    }

    /// Takes a file that was captured into a scratch directory (e.g. a backup stream).
    pub fn captured(
        description: String,
        scratch: ScratchDir,
        file: PathBuf,
    ) -> Result<Input, InputError> {
        let bytes = fs::metadata(&file).map_err(at(&file))?.len();
        Ok(Input {
            description,
            bytes,
            files: vec![file],
            _scratch: Some(scratch),
        })
    }

    fn from_path(path: &Path) -> Result<Input, InputError> {
        let meta = fs::symlink_metadata(path).map_err(at(path))?;
        let mut files = Vec::new();
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.to_path_buf());
        }
        let mut bytes = 0;
        for f in &files {
            bytes += fs::metadata(f).map_err(at(f))?.len();
        }
        if bytes == 0 {
            return Err(InputError::Empty(path.to_path_buf()));
        }
        let description = if meta.is_dir() {
            format!(
                "{} ({} files, {})",
                path.display(),
                files.len(),
                ByteSize(bytes)
            )
        } else {
            format!("{} ({})", path.display(), ByteSize(bytes))
        };
        Ok(Input {
            description,
            bytes,
            files,
            _scratch: None,
        })
    }

    /// The files read, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// A fresh reader over all the input's bytes.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Concat {
            files: self.files.clone().into_iter(),
            current: None,
        }))
    }

    /// Reads everything once, so the first measured run does not pay for cold caches.
    pub fn warm(&self) -> io::Result<u64> {
        io::copy(&mut self.open()?, &mut io::sink())
    }
}

/// Regular files under `dir`, in sorted path order; symlinks and special files are skipped.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(at(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(at(dir))?;
    entries.sort();
    for path in entries {
        let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// The files' bytes one after the other.
struct Concat {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<File>,
}

impl Read for Concat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = self.current.as_mut() {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.current = None;
            }
            match self.files.next() {
                Some(path) => {
                    self.current = Some(File::open(&path).map_err(|e| {
                        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?);
                }
                None => return Ok(0),
            }
        }
    }
}

/// A private directory under the system temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn new() -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "switchyard-sstbench-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path)?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_is_read_in_sorted_order() {
        let scratch = ScratchDir::new().unwrap();
        let d = &scratch.path;
        fs::create_dir_all(d.join("b/sub")).unwrap();
        fs::write(d.join("b/sub/z.ibd"), b"3").unwrap();
        fs::write(d.join("c.frm"), b"4").unwrap();
        fs::write(d.join("a.ibd"), b"1").unwrap();
        fs::write(d.join("b/x"), b"2").unwrap();
        std::os::unix::fs::symlink(d.join("a.ibd"), d.join("d-link")).unwrap();
        let input = Input::prepare(&InputSpec::Path(d.clone())).unwrap();
        let mut all = String::new();
        input.open().unwrap().read_to_string(&mut all).unwrap();
        assert_eq!(all, "1324");
        assert_eq!(input.bytes, 4);
        assert!(
            input.description.contains("4 files"),
            "{}",
            input.description
        );
    }

    #[test]
    fn generated_input_is_removed_with_it() {
        let spec = InputSpec::parse_generate("100KiB:text", 1).unwrap();
        let input = Input::prepare(&spec).unwrap();
        assert_eq!(input.bytes, 100 * 1024);
        let file = input.files[0].clone();
        assert_eq!(input.warm().unwrap(), 100 * 1024);
        drop(input);
        assert!(!file.exists());
        assert!(InputSpec::parse_generate("100KiB", 1).is_err());
        assert!(InputSpec::parse_generate("0:innodb", 1).is_err());
        assert!(InputSpec::parse_generate("1MiB:jpeg", 1).is_err());
    }

    #[test]
    fn missing_or_empty_inputs_are_errors() {
        assert!(Input::prepare(&InputSpec::Path("/nonexistent/datadir".into())).is_err());
        let scratch = ScratchDir::new().unwrap();
        let err = Input::prepare(&InputSpec::Path(scratch.path.clone())).unwrap_err();
        assert!(matches!(err, InputError::Empty(_)), "{err}");
    }
}
