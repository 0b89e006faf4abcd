//! Judge0's `additional_files`: a base64 zip (always base64, whatever `base64_encoded` says,
//! as in Judge0 CE 1.13.1) whose files are put beside the source before the compile stage.
//! Read with the `zip` crate; every entry is checked as a run's `files` are (a relative path
//! inside the working dir, not the main file), and the sizes are enforced on what is actually
//! inflated, never on what the archive declares, so a zip bomb stops at the limit.

use crate::maxima::{RunMaxima, MAX_FILES};
use crate::run_files::{check_name, nested};
use crate::validate::Problems;
use base64::Engine as _;
use livexec_core::SourceFile;
use std::io::{Cursor, Read};

/// The entry count the archive's end-of-central-directory record declares, when there is one
/// and it is not ZIP64's placeholder.
fn declared_entries(bytes: &[u8]) -> Option<usize> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    // The record is 22 bytes plus a comment of at most 65 535: search that far from the end.
    let from = bytes.len().saturating_sub(22 + 0xffff);
    let at = bytes[from..].windows(4).rposition(|w| w == EOCD)? + from;
    let total = bytes.get(at + 10..at + 12)?;
    let n = u16::from_le_bytes([total[0], total[1]]);
    (n != 0xffff).then_some(usize::from(n))
}

/// The files of an `additional_files` value, or Judge0-style messages saying what is wrong.
/// `main` is the runtime's main file name, which no entry may replace.
pub fn files(encoded: &str, main: &str, maxima: &RunMaxima) -> Result<Vec<SourceFile>, String> {
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = super::judge0_wire::LENIENT
        .decode(compact)
        .map_err(|_| "is not valid base64".to_owned())?;
    let declared = declared_entries(&bytes);
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("is not a valid zip archive ({e})"))?;
    // The reader keeps one entry per name (the last): more entries declared than read means
    // a name is there twice.
    if declared.is_some_and(|n| n > archive.len()) {
        return Err("contains an entry name twice".to_owned());
    }
    if archive.len() > MAX_FILES {
        return Err(format!(
            "must contain no more than {MAX_FILES} files, got {}",
            archive.len()
        ));
    }
    let mut out: Vec<SourceFile> = Vec::new();
    let mut budget = maxima.file_bytes;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("entry {i} cannot be read ({e})"))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| format!("entry {i} has no usable name ({e})"))?
            .into_owned();
        if entry.is_symlink() {
            return Err(format!(
                "{name:?} is a symbolic link; only files are accepted"
            ));
        }
        let mut problems = Problems::default();
        check_name(&format!("the name of entry {i}"), &name, &mut problems);
        if let Some(problem) = problems.first() {
            return Err(problem);
        }
        if name == main {
            return Err(format!(
                "must not contain {main}, the name of the source file"
            ));
        }
        if out.iter().any(|f| f.name == name) {
            return Err(format!("contains {name:?} twice"));
        }
        if let Some(other) = std::iter::once(main)
            .chain(out.iter().map(|f| f.name.as_str()))
            .find(|other| nested(&name, other))
        {
            return Err(format!(
                "contains {name:?} and {other:?}: one cannot be both a file and the other's directory"
            ));
        }
        // Read at most one byte past what is left: the declared size may lie.
        let mut content = Vec::new();
        (&mut entry)
            .take(budget as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("{name:?} cannot be decompressed ({e})"))?;
        if content.len() > budget {
            return Err(format!(
                "must not hold more than {} bytes once decompressed",
                maxima.file_bytes
            ));
        }
        budget -= content.len();
        out.push(SourceFile { name, content });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> String {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in entries {
            w.start_file(
                *name,
                SimpleFileOptions::default().compression_method(method),
            )
            .unwrap();
            w.write_all(content).unwrap();
        }
        STANDARD.encode(w.finish().unwrap().into_inner())
    }

    #[test]
    fn files_come_out_of_stored_and_deflated_entries() {
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let z = zip_of(
                &[("data.txt", b"42\n"), ("lib/util.h", b"#define X 1\n")],
                method,
            );
            let files = files(&z, "main.c", &RunMaxima::default()).unwrap();
            assert_eq!(files.len(), 2);
            assert_eq!(files[0].name, "data.txt");
            assert_eq!(files[0].content, b"42\n");
            assert_eq!(files[1].name, "lib/util.h");
        }
    }

    #[test]
    fn escapes_the_main_file_bombs_and_garbage_are_refused() {
        let m = RunMaxima::default();
        let escape = zip_of(&[("../etc/passwd", b"x")], zip::CompressionMethod::Stored);
        assert!(files(&escape, "main.c", &m).unwrap_err().contains(".."));
        let abs = zip_of(&[("/tmp/x", b"x")], zip::CompressionMethod::Stored);
        assert!(files(&abs, "main.c", &m).is_err());
        let main = zip_of(&[("main.c", b"x")], zip::CompressionMethod::Stored);
        assert!(files(&main, "main.c", &m).unwrap_err().contains("main.c"));
        // A file where another needs a directory could not be written by the sandbox.
        let nest = zip_of(
            &[("a", b"x"), ("a/b", b"y")],
            zip::CompressionMethod::Stored,
        );
        assert!(files(&nest, "main.c", &m)
            .unwrap_err()
            .contains("both a file and"));
        // The writer refuses a name twice: rename the second entry in the bytes it wrote.
        let mut raw = STANDARD
            .decode(zip_of(
                &[("a", b"1"), ("b", b"2")],
                zip::CompressionMethod::Stored,
            ))
            .unwrap();
        let mut seen = 0;
        for i in 0..raw.len() - 1 {
            // The name follows each local (30-byte) and central (46-byte) header.
            if raw[i] == b'b'
                && ((i >= 30 && raw[i - 30..i - 26] == [0x50, 0x4b, 3, 4])
                    || (i >= 46 && raw[i - 46..i - 42] == [0x50, 0x4b, 1, 2]))
            {
                raw[i] = b'a';
                seen += 1;
            }
        }
        assert_eq!(seen, 2, "both headers of the second entry renamed");
        let twice = STANDARD.encode(raw);
        assert!(files(&twice, "main.c", &m).unwrap_err().contains("twice"));
        let under_main = zip_of(&[("main.c/x", b"x")], zip::CompressionMethod::Stored);
        assert!(files(&under_main, "main.c", &m).is_err());
        // 64 MiB of zeros deflate to a few KiB: refused at the limit, not inflated whole.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zip_of(&[("zeros", &zeros)], zip::CompressionMethod::Deflated);
        assert!(bomb.len() < 1 << 20);
        assert!(files(&bomb, "main.c", &m)
            .unwrap_err()
            .contains("once decompressed"));
        assert!(files("not base64!", "main.c", &m).is_err());
        assert!(files(&STANDARD.encode(b"not a zip"), "main.c", &m).is_err());
    }
}
