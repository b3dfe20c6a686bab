//! Output files: names and safe writes (DESIGN.md, "Errors and files").
//!
//! * A file is written under a hidden temporary name in the target folder, flushed to disk, and
//!   only then given its final name, so a partial image never appears under that name.
//! * An existing file is never replaced unless the caller asks (`overwrite`). Without it the final
//!   name is made with `hard_link`, which fails if the name exists: a no-clobber move that is
//!   atomic even against another process writing the same name at the same moment.
//! * Automatic names follow A1111's `00012-721-a-lighthouse-at-dawn.png` (running index, seed,
//!   prompt slug).
//! * Temporary names end in a random suffix (`.out.png.3f9a…c2.tmp`), so the leftovers of a
//!   killed run never block a later one, and [`sweep_stale_temps`] removes such leftovers once
//!   they are old enough that no live writer can own them.

use crate::{Error, ErrorKind, Message, Result, Setting};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Longest prompt slug in an automatic file name, in bytes (ASCII).
pub(crate) const SLUG_MAX: usize = 48;

/// How many taken names `write_auto` skips before giving up (each miss means another process
/// took the index between our listing and our link; more than this means something is wrong).
const AUTO_ATTEMPTS: usize = 1000;

/// How many random temporary names are tried before giving up (each miss means the name
/// exists: with 64 random bits, only something other than chance makes a second miss).
const TEMP_ATTEMPTS: usize = 16;

/// A temporary file older than this is a leftover of a run that was killed: a live writer's
/// exists only while it writes and flushes one image (seconds). An hour leaves room for a very
/// slow disk and for clocks that disagree (a network share stamps times with its own clock).
pub(crate) const STALE_TEMP_AGE: Duration = Duration::from_secs(60 * 60);

/// Writes `bytes` to `path` through a temporary file, after the checks of `check_new`. Refuses
/// an existing `path` unless `overwrite`; then it is replaced atomically.
pub fn write_new(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    check_new(path, overwrite)?;
    if overwrite {
        TempFile::write(&parent_dir(path), &file_name(path)?, bytes)?.rename_to(path)
    } else if write_if_absent(path, bytes)? {
        Ok(())
    } else {
        Err(exists_error(path))
    }
}

/// Replaces (or creates) `path` with `bytes` atomically, through a temporary file in its
/// folder, for seedling's own data files (the models folder's hash cache): no name or overwrite
/// checks, since the caller owns the file. A reader sees the old file or the new one, never a
/// partial one.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    TempFile::write(&parent_dir(path), &file_name(path)?, bytes)?.rename_to(path)
}

/// Writes `bytes` to `path` unless something has that name; `Ok(false)` then, with nothing
/// written. For callers whose advice about a taken name differs from `write_new`'s (a batch has
/// no `--overwrite`; with `--skip-existing` a taken name may be an image to keep). Same checks
/// and the same atomic no-clobber move as `write_new`.
pub fn write_if_absent(path: &Path, bytes: &[u8]) -> Result<bool> {
    check_new(path, true)?;
    TempFile::write(&parent_dir(path), &file_name(path)?, bytes)?.link_to(path)
}

/// Checks what `write_new(path, _, overwrite)` needs, so that callers can refuse a bad path
/// before minutes of generation rather than after: a file name (not a folder) ending in `.png`
/// (every file seedling writes is a PNG: the recipe lives in its text chunks), an existing
/// folder to put it in, and no file of that name unless `overwrite`. `write_new` checks again at
/// the end, since the disk may change meanwhile.
pub fn check_new(path: &Path, overwrite: bool) -> Result<()> {
    file_name(path)?;
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        let message = Message::text(format!(
            "output path {} is a folder; give a file name inside it, such as {}, or pass it as ",
            path.display(),
            path.join("image.png").display()
        ))
        .mention(Setting::OutDir)
        .then(" for automatic names");
        return Err(Error::hint(ErrorKind::BadInput, message));
    }
    check_png_name(path)?;
    check_dir_exists(&parent_dir(path), path)?;
    if !overwrite && exists(path) {
        return Err(exists_error(path));
    }
    Ok(())
}

/// Checks that automatic names can go in `dir`: a folder, or nothing yet (`write_auto` creates
/// it). For the same early refusal as `check_new`.
pub fn check_auto_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(Error::Invalid(format!(
            "output folder {} is a file; choose a folder (it is made if missing)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Checks that a file can be created in `dir` (or, when `dir` is missing, that it can be made
/// in the nearest folder above it that exists), by creating and removing a small file there:
/// a read-only file system, a folder without write permission or a full disk is then found
/// before minutes of rendering rather than at the first save. What the probe cannot foresee is
/// a disk that fills up during the run; then the image being saved fails cleanly (its temporary
/// file removed, nothing under its final name) and the images saved before it stay.
pub fn check_writable(dir: &Path) -> Result<()> {
    // The folder itself, else the nearest one above it that exists (where it will be made).
    let existing = dir
        .ancestors()
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        })
        .find(|d| fs::metadata(d).is_ok())
        .unwrap_or(Path::new("."));
    if !fs::metadata(existing).is_ok_and(|m| m.is_dir()) {
        return Err(Error::Invalid(format!(
            "cannot make output folder {}: {} is a file, not a folder; choose another output \
             folder",
            dir.display(),
            existing.display()
        )));
    }
    probe(existing, dir)
}

/// Creates, fills and removes a probe file in `folder`, which exists; `dir` is the output
/// folder the message names (`folder` or a missing folder below it).
fn probe(folder: &Path, dir: &Path) -> Result<()> {
    let written = TempFile::write(folder, PROBE_NAME, b"seedling write test");
    written.map(drop).map_err(|e| {
        let cause = match e {
            Error::Io { cause, .. } => cause.to_string(),
            other => other.to_string(),
        };
        let what = if folder == dir {
            format!("cannot write to output folder {}", dir.display())
        } else {
            format!(
                "cannot make output folder {} in {}",
                dir.display(),
                folder.display()
            )
        };
        let message = Message::text(format!("{what}: {cause}; choose another output folder ("))
            .mention(Setting::OutDir)
            .then(", or ")
            .mention(Setting::OutFile)
            .then(" with a path in another folder), or make this one writable with free space");
        Error::hint(ErrorKind::BadInput, message)
    })
}

/// The name a probe stands for: its temporary file follows the temporary-file pattern, so a
/// probe left by a killed run is swept like any other leftover.
const PROBE_NAME: &str = "seedling-probe.png";

/// Removes leftovers of killed runs from `dir`: regular files (never folders or links) whose
/// names follow seedling's temporary-file pattern exactly — `.<name>.png.<16 hex digits>.tmp`,
/// or `.<name>.png.<pid>.<n>.tmp` as older versions named them — and whose last change is at
/// least [`STALE_TEMP_AGE`] old. A process id cannot prove a writer dead (in a container every
/// run is process 1), so age decides. Best effort: a file that cannot be removed stays, and
/// nothing is reported but the removed paths. Lists `dir` once; call it once per run, not per
/// image.
pub fn sweep_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for entry in entries.filter_map(|e| e.ok()) {
        if !is_temp_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let stale = fs::symlink_metadata(&path).is_ok_and(|m| {
            m.file_type().is_file()
                && m.modified()
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age >= STALE_TEMP_AGE))
        });
        if stale && fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed.sort();
    removed
}

/// Whether `name` follows seedling's temporary-file pattern (see [`sweep_stale_temps`]).
fn is_temp_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    // A final name: something, then `.png` in any case.
    let final_name = |stem: &str| {
        stem.len() > ".png".len()
            && stem
                .get(stem.len() - ".png".len()..)
                .is_some_and(|ext| ext.eq_ignore_ascii_case(".png"))
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let random = |s: &str| {
        s.len() == TEMP_SUFFIX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if let Some((stem, suffix)) = inner.rsplit_once('.') {
        if random(suffix) && final_name(stem) {
            return true;
        }
    }
    // `<name>.png.<pid>.<n>`, as older versions named them.
    let mut parts = inner.rsplitn(3, '.');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(n), Some(pid), Some(stem)) if digits(n) && digits(pid) && final_name(stem)
    )
}

/// The next automatic name in `dir`: `{index:05}-{seed}-{slug}.png`, or `{index:05}-{seed}.png`
/// when the prompt gives no slug. The index is one more than the highest index already there
/// (any file whose name starts with digits and then `-` or `.`, whoever wrote it); an empty or
/// missing folder starts at 00000, as A1111's `get_next_sequence_number` does.
pub fn auto_path(dir: &Path, seed: u64, prompt: &str) -> PathBuf {
    dir.join(auto_name(next_index(dir), &image_stem(seed, prompt)))
}

/// Writes `bytes` under the next automatic name in `dir` (created if missing) and returns the
/// path. Never overwrites: if another process takes the chosen name first, the next index is
/// tried.
pub fn write_auto(dir: &Path, seed: u64, prompt: &str, bytes: &[u8]) -> Result<PathBuf> {
    write_auto_stem(dir, &image_stem(seed, prompt), bytes)
}

/// `write_auto` for any name after the index: `{index:05}-{stem}.png` (contact sheets use
/// `grid-<slug>`).
pub fn write_auto_stem(dir: &Path, stem: &str, bytes: &[u8]) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io("cannot create output folder", dir, e))?;
    let probe = auto_name(0, stem);
    let tmp = TempFile::write(dir, &probe, bytes)?;
    for _ in 0..AUTO_ATTEMPTS {
        let path = dir.join(auto_name(next_index(dir), stem));
        if tmp.link_to(&path)? {
            return Ok(path);
        }
    }
    Err(Error::Invalid(format!(
        "could not find a free file name in {} after {AUTO_ATTEMPTS} tries (other processes keep \
         taking them); pass an explicit output path",
        dir.display()
    )))
}

/// `{seed}-{slug}`, or `{seed}` when the prompt gives no slug.
fn image_stem(seed: u64, prompt: &str) -> String {
    let slug = slug(prompt);
    if slug.is_empty() {
        seed.to_string()
    } else {
        format!("{seed}-{slug}")
    }
}

fn auto_name(index: u64, stem: &str) -> String {
    format!("{index:05}-{stem}.png")
}

/// 1 + the highest leading number of a file name in `dir`; 0 when there is none.
fn next_index(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| leading_index(&e.file_name().to_string_lossy()))
        .max()
        .map_or(0, |max| max.saturating_add(1))
}

/// The number a name starts with, when digits are followed by `-`, `.` or nothing
/// (`00007-foo.png` -> 7, `00003.png` -> 3, `12ab.png` -> none; hidden temp files start with
/// `.` and never count).
fn leading_index(name: &str) -> Option<u64> {
    let digits = name.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    match name.as_bytes().get(digits) {
        None | Some(b'-') | Some(b'.') => name[..digits].parse().ok(),
        _ => None,
    }
}

/// A file-name slug of a prompt: lowercase ASCII letters and digits, words joined by `-`, at most
/// [`SLUG_MAX`] bytes cut at a word boundary (a single longer word is cut). Non-ASCII characters
/// and apostrophes are dropped (`"artist's"` -> `artists`); any other character separates words.
pub fn slug(prompt: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in prompt.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c.to_ascii_lowercase());
        } else if c == '\'' || !c.is_ascii() {
            continue;
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }

    let mut out = String::new();
    for w in words {
        let extra = if out.is_empty() { w.len() } else { w.len() + 1 };
        if out.len() + extra > SLUG_MAX {
            if out.is_empty() {
                out.push_str(&w[..SLUG_MAX]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&w);
    }
    out
}

/// The folder a file `path` is in: its parent, or `.` for a bare file name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn check_dir_exists(dir: &Path, path: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Invalid(format!(
            "cannot write {}: {} is not a folder; choose an output path inside a folder",
            path.display(),
            dir.display()
        ))),
        Err(_) => Err(Error::Invalid(format!(
            "cannot write {}: the folder {} does not exist; create it first (mkdir -p {}) or \
             choose another output path",
            path.display(),
            dir.display(),
            dir.display()
        ))),
    }
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "output path {} names no file; give a file name such as out.png",
                path.display()
            ))
        })
}

/// Refuses a name that does not end in `.png` (any case): writing PNG bytes under `.jpg` or no
/// extension would mislead viewers and tools that go by the name.
fn check_png_name(path: &Path) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "output file {} does not end in .png; seedling writes PNG images (the recipe is kept in \
         their text chunks): use {}",
        path.display(),
        path.with_extension("png").display()
    )))
}

/// Whether anything (file, folder, even a dangling link) has this name.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn exists_error(path: &Path) -> Error {
    let message = Message::text(format!(
        "output file {} already exists; choose another name, or pass ",
        path.display()
    ))
    .set(Setting::Overwrite, true)
    .then(" to replace it");
    Error::hint(ErrorKind::BadInput, message)
}

/// Hex digits of a temporary name's random suffix (64 bits).
const TEMP_SUFFIX_LEN: usize = 16;

/// A complete, flushed temporary file in the target folder. Removed when dropped, so every error
/// path cleans up; after a successful rename there is nothing left to remove.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes and fsyncs `.{name}.{random}.tmp` in `dir` (hidden). The name is random, not
    /// made of the process id: a killed run leaves its temporary file behind, and in a container
    /// every run is process 1, so a pid-based name made every later run of the image fail. A
    /// name that exists (a leftover, another writer) is never opened; another is drawn.
    fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<TempFile> {
        let (path, mut file) = create_temp(dir, name)?;
        // From here on the guard removes the file if anything fails.
        let tmp = TempFile { path };
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("cannot write temporary file", &tmp.path, e))?;
        Ok(tmp)
    }

    /// Replaces `dest` with this file (atomic on POSIX and on Windows' `MoveFileEx`).
    fn rename_to(self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest).map_err(|e| Error::io("cannot write output file", dest, e))?;
        sync_dir(&parent_dir(dest));
        Ok(())
    }

    /// Gives this file the name `dest` unless `dest` exists; `Ok(false)` when it does. The
    /// temporary name stays (for another try) until the guard is dropped.
    fn link_to(&self, dest: &Path) -> Result<bool> {
        match fs::hard_link(&self.path, dest) {
            Ok(()) => {
                sync_dir(&parent_dir(dest));
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            // Typically a file system without hard links (FAT, exFAT, some network shares,
            // EPERM/EOPNOTSUPP). The fallback is still no-clobber; if the cause was something
            // else, the fallback fails too and reports it.
            Err(_) => self.copy_no_clobber(dest),
        }
    }

    /// For file systems without hard links (FAT, exFAT, some network shares): create `dest`
    /// exclusively (`create_new` fails if it exists, so still no clobbering) and copy into it.
    /// Unlike a link this is not atomic: a crash mid-copy can leave a partial file, which is
    /// then removed on the error path we see.
    fn copy_no_clobber(&self, dest: &Path) -> Result<bool> {
        let mut out = match OpenOptions::new().write(true).create_new(true).open(dest) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(Error::io("cannot create output file", dest, e)),
        };
        let copied = File::open(&self.path)
            .and_then(|mut src| io::copy(&mut src, &mut out))
            .and_then(|_| out.sync_all());
        if let Err(e) = copied {
            let _ = fs::remove_file(dest);
            return Err(Error::io("cannot write output file", dest, e));
        }
        Ok(true)
    }
}

/// Creates `.{name}.{random}.tmp` in `dir` exclusively (`create_new`: never an existing file).
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..TEMP_ATTEMPTS {
        let suffix = format!(
            "{:0width$x}",
            rand::random::<u64>(),
            width = TEMP_SUFFIX_LEN
        );
        let path = dir.join(format!(".{name}.{suffix}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(e) => return Err(Error::io("cannot create temporary file", &path, e)),
        }
    }
    let (path, e) = last.expect("at least one attempt");
    Err(Error::io("cannot create temporary file", &path, e))
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After `rename_to` the name is gone and this fails harmlessly.
        let _ = fs::remove_file(&self.path);
    }
}

/// Makes a new name durable (POSIX: fsync the folder). Best effort: the data itself was already
/// fsynced, and some systems (Windows) cannot open a folder as a file.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn invalid(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(e @ (Error::Invalid(_) | Error::Hint { .. })) => {
                assert_eq!(e.kind(), crate::ErrorKind::BadInput);
                e.render(crate::message::as_flags)
            }
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn writes_a_new_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        write_new(&path, b"image bytes", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"image bytes");
        assert_eq!(names(dir.path()), ["out.png"]);
    }

    #[test]
    fn refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        fs::write(&path, b"old").unwrap();
        let msg = invalid(write_new(&path, b"new", false));
        assert_eq!(
            msg,
            format!(
                "output file {} already exists; choose another name, or pass --overwrite to \
                 replace it",
                path.display()
            )
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["out.png"]);
    }

    #[test]
    fn overwrites_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        fs::write(&path, b"old").unwrap();
        write_new(&path, b"new", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out.png"]);
    }

    #[test]
    fn link_race_loses_cleanly() {
        // What `write_new` does when another process creates the name between the existence
        // check and the link: the link fails, nothing is clobbered, the temp file goes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        let tmp = TempFile::write(dir.path(), "out.png", b"ours").unwrap();
        fs::write(&path, b"theirs").unwrap();
        assert!(!tmp.link_to(&path).unwrap());
        drop(tmp);
        assert_eq!(fs::read(&path).unwrap(), b"theirs");
        assert_eq!(names(dir.path()), ["out.png"]);
    }

    #[test]
    fn failed_replace_removes_the_temp_file() {
        // A non-empty folder cannot be replaced by a file: the rename fails after the temp file
        // was written, and the temp file must not stay behind. (`write_new` refuses a folder
        // before writing anything; this is what happens if one appears meanwhile.)
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("taken.png");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        let tmp = TempFile::write(dir.path(), "taken.png", b"new").unwrap();
        let err = tmp.rename_to(&target).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert_eq!(names(dir.path()), ["taken.png"]);
        assert_eq!(names(&target), ["inside"]);
    }

    /// Makes `path` look last changed `age` ago.
    fn age(path: &Path, age: Duration) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - age)
            .unwrap();
    }

    #[test]
    fn a_killed_runs_temp_file_never_blocks_a_write() {
        // Temporary names used to be `.<name>.<pid>.<n>.tmp`: a SIGKILL left one, and the next
        // run with the same pid (in a container, always 1) failed with "File exists". Here: every
        // name the old scheme could pick in this process is taken.
        let dir = tempfile::tempdir().unwrap();
        for n in 0..1000 {
            let old = format!(".out.png.{}.{n}.tmp", std::process::id());
            fs::write(dir.path().join(old), b"left by a killed run").unwrap();
        }
        let path = dir.path().join("out.png");
        write_new(&path, b"image", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"image");
        // The young leftovers are not swept by a write (only `sweep_stale_temps` removes, by age).
        assert_eq!(names(dir.path()).len(), 1001);
    }

    #[test]
    fn temp_names_are_random_and_follow_the_swept_pattern() {
        let dir = tempfile::tempdir().unwrap();
        let a = TempFile::write(dir.path(), "out.png", b"a").unwrap();
        let b = TempFile::write(dir.path(), "out.png", b"b").unwrap();
        assert_ne!(a.path, b.path);
        for t in [&a, &b] {
            let name = t.path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with(".out.png.") && name.ends_with(".tmp"),
                "{name}"
            );
            assert!(is_temp_name(&name), "{name}");
        }
    }

    #[test]
    fn only_stale_temp_files_of_our_pattern_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let old = Duration::from_secs(2 * 60 * 60);
        let swept = [
            ".out.png.0123456789abcdef.tmp",
            ".out.png.1.0.tmp", // the pid scheme of older versions
            ".00000-7-a-cat.png.4242.17.tmp",
            ".OUT.PNG.1.7.tmp",
            ".seedling-probe.png.fedcba9876543210.tmp", // a probe left by a killed run
        ];
        let kept_old = [
            ".out.png.0123456789abcdeg.tmp", // not hex
            ".out.png.0123456789ABCDEF.tmp", // we write lowercase
            ".out.png.0123456789abcde.tmp",  // 15 digits
            ".out.png.123.tmp",
            ".out.jpg.1.0.tmp",
            "out.png.1.0.tmp", // not hidden
            "..png.1.0.tmp",   // no name before .png
            ".out.png.1.0.tmp.bak",
            ".out.png.a.0.tmp",
            "notes.txt",
            "00001-7-a-cat.png",
        ];
        for name in swept.iter().chain(&kept_old) {
            fs::write(dir.path().join(name), b"x").unwrap();
            age(&dir.path().join(name), old);
        }
        // Young: possibly a live writer's.
        let young = ".other.png.1.0.tmp";
        fs::write(dir.path().join(young), b"x").unwrap();
        age(
            &dir.path().join(young),
            STALE_TEMP_AGE - Duration::from_secs(60),
        );
        // Not regular files: never removed.
        fs::create_dir(dir.path().join(".folder.png.1.0.tmp")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("notes.txt", dir.path().join(".link.png.1.0.tmp")).unwrap();

        let mut want: Vec<PathBuf> = swept.iter().map(|n| dir.path().join(n)).collect();
        want.sort();
        assert_eq!(sweep_stale_temps(dir.path()), want);
        let left = names(dir.path());
        for name in kept_old.iter().chain(&[young, ".folder.png.1.0.tmp"]) {
            assert!(left.contains(&name.to_string()), "{name} was removed");
        }
        for name in swept {
            assert!(!left.contains(&name.to_string()), "{name} was kept");
        }
        assert_eq!(fs::read(dir.path().join("notes.txt")).unwrap(), b"x");
        // A missing folder has nothing to sweep.
        assert!(sweep_stale_temps(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn a_writable_folder_passes_the_probe_and_keeps_nothing_of_it() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(dir.path()).unwrap();
        // A missing folder: probed where it will be made, and not made yet.
        check_writable(&dir.path().join("new").join("deeper")).unwrap();
        assert_eq!(names(dir.path()), Vec::<String>::new());

        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let msg = invalid(check_writable(&file.join("sub")));
        assert_eq!(
            msg,
            format!(
                "cannot make output folder {}: {} is a file, not a folder; choose another \
                 output folder",
                file.join("sub").display(),
                file.display()
            )
        );
    }

    /// Files cannot be created in /proc, by root either (chmod does not stop root, so a
    /// read-only folder made in a test would not do in CI, which runs tests as root).
    #[cfg(target_os = "linux")]
    #[test]
    fn an_unwritable_folder_fails_the_probe_and_names_the_os_error_once() {
        let msg = invalid(check_writable(Path::new("/proc")));
        assert_eq!(
            msg,
            "cannot write to output folder /proc: No such file or directory (os error 2); choose \
             another output folder (--out-dir, or -o with a path in another folder), or make this \
             one writable with free space"
        );
        let msg = invalid(check_writable(Path::new("/proc/new")));
        assert_eq!(
            msg,
            "cannot make output folder /proc/new in /proc: No such file or directory (os error \
             2); choose another output folder (--out-dir, or -o with a path in another folder), \
             or make this one writable with free space"
        );
    }

    #[test]
    fn a_folder_or_a_name_without_png_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("taken.png");
        fs::create_dir(&folder).unwrap();
        for overwrite in [false, true] {
            let msg = invalid(write_new(&folder, b"x", overwrite));
            assert_eq!(
                msg,
                format!(
                    "output path {} is a folder; give a file name inside it, such as {}, or pass \
                     it as --out-dir for automatic names",
                    folder.display(),
                    folder.join("image.png").display()
                )
            );
        }
        for (name, suggested) in [("out.jpg", "out.png"), ("out", "out.png")] {
            let path = dir.path().join(name);
            let msg = invalid(check_new(&path, false));
            assert_eq!(
                msg,
                format!(
                    "output file {} does not end in .png; seedling writes PNG images (the recipe \
                     is kept in their text chunks): use {}",
                    path.display(),
                    dir.path().join(suggested).display()
                )
            );
        }
        check_new(&dir.path().join("OUT.PNG"), false).unwrap();
        assert_eq!(names(dir.path()), ["taken.png"]);
        assert_eq!(names(&folder), Vec::<String>::new());
    }

    #[test]
    fn an_auto_folder_may_be_missing_but_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        check_auto_dir(dir.path()).unwrap();
        check_auto_dir(&dir.path().join("new")).unwrap();
        let file = dir.path().join("file.png");
        fs::write(&file, b"x").unwrap();
        let msg = invalid(check_auto_dir(&file));
        assert_eq!(
            msg,
            format!(
                "output folder {} is a file; choose a folder (it is made if missing)",
                file.display()
            )
        );
    }

    #[test]
    fn missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("no").join("such");
        let path = folder.join("out.png");
        let msg = invalid(write_new(&path, b"x", false));
        assert!(
            msg.contains(&format!("the folder {} does not exist", folder.display())),
            "{msg}"
        );
        assert!(msg.contains("create it first"), "{msg}");
        assert!(!folder.exists());

        let file = dir.path().join("file");
        fs::write(&file, b"x").unwrap();
        let msg = invalid(write_new(&file.join("out.png"), b"x", false));
        assert!(msg.contains("is not a folder"), "{msg}");
    }

    #[test]
    fn relative_path_without_folder_uses_current_dir() {
        assert_eq!(parent_dir(Path::new("out.png")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/out.png")), PathBuf::from("a"));
    }

    #[test]
    fn auto_names_start_at_zero_and_count_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new-folder");
        let p1 = write_auto(&out, 721, "A lighthouse at dawn", b"1").unwrap();
        let p2 = write_auto(&out, 722, "A lighthouse at dawn", b"2").unwrap();
        let p3 = write_auto(&out, 5, "灯台", b"3").unwrap();
        assert_eq!(p1, out.join("00000-721-a-lighthouse-at-dawn.png"));
        assert_eq!(p2, out.join("00001-722-a-lighthouse-at-dawn.png"));
        assert_eq!(p3, out.join("00002-5.png"));
        assert_eq!(fs::read(&p2).unwrap(), b"2");
        assert_eq!(
            names(&out).len(),
            3,
            "no temp files left: {:?}",
            names(&out)
        );
    }

    #[test]
    fn auto_index_passes_every_numbered_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "00007-foo.png",        // not ours, still counts
            "00003.png",            // bare index
            "12ab.png",             // digits not followed by '-' or '.': not an index
            "notes.txt",            // no digits
            ".00050-x.png.1.0.tmp", // a temp file: hidden, never counts
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::create_dir(dir.path().join("00005-folder")).unwrap();
        assert_eq!(
            auto_path(dir.path(), 721, "a lighthouse at dawn"),
            dir.path().join("00008-721-a-lighthouse-at-dawn.png")
        );
        fs::write(dir.path().join("00099-zz.jpg"), b"x").unwrap();
        assert_eq!(auto_path(dir.path(), 1, ""), dir.path().join("00100-1.png"));
        // Wider than five digits is kept whole.
        fs::write(dir.path().join("123456-a.png"), b"x").unwrap();
        assert_eq!(
            auto_path(dir.path(), 1, "x"),
            dir.path().join("123457-1-x.png")
        );
    }

    #[test]
    fn auto_names_never_collide_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_path_buf();
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let out = out.clone();
                std::thread::spawn(move || {
                    (0..5u8)
                        .map(|j| {
                            let data = [i, j];
                            (write_auto(&out, 1, "race", &data).unwrap(), data)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let written: Vec<(PathBuf, [u8; 2])> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(written.len(), 40);
        for (path, data) in &written {
            assert_eq!(&fs::read(path).unwrap(), data, "{}", path.display());
        }
        let mut got = names(&out);
        got.sort();
        let want: Vec<String> = (0..40).map(|i| format!("{i:05}-1-race.png")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn slugs() {
        let cases = [
            ("A lighthouse at dawn", "a-lighthouse-at-dawn"),
            ("  A   lighthouse,,at--dawn!  ", "a-lighthouse-at-dawn"),
            (
                "(masterpiece:1.2), best quality, 1girl",
                "masterpiece-1-2-best-quality-1girl",
            ),
            ("an artist's beret", "an-artists-beret"),
            ("café au lait", "caf-au-lait"),
            ("灯台 🌅 at dawn", "at-dawn"),
            ("灯台 🌅", ""),
            ("", ""),
            ("../../etc/passwd", "etc-passwd"),
            ("line one\nline two\ttab", "line-one-line-two-tab"),
            (
                "a very long prompt about a lighthouse standing on a cliff at dawn",
                "a-very-long-prompt-about-a-lighthouse-standing",
            ),
            (
                "supercalifragilisticexpialidocious-supercalifragilisticexpialidocious",
                "supercalifragilisticexpialidocious",
            ),
        ];
        for (prompt, want) in cases {
            let got = slug(prompt);
            assert_eq!(got, want, "prompt {prompt:?}");
            assert!(got.len() <= SLUG_MAX);
        }
        // One word longer than the limit is cut to it.
        let long = "x".repeat(100);
        assert_eq!(slug(&long), "x".repeat(SLUG_MAX));
        // The cut lands exactly at the limit when the words fit.
        let exact = format!("{} {}", "a".repeat(23), "b".repeat(24));
        assert_eq!(slug(&exact).len(), SLUG_MAX);
    }
}
