//! Output files (`return_files`): which patterns the sandbox is asked to collect from the
//! working dir after a run, which of the collected files match, and the cap on what is
//! handed back.
//!
//! Patterns match the plain names of the working dir's top level (`out.txt`, `*.png`,
//! `frame?.csv`): `*` matches any run of characters, `?` exactly one; a pattern with `/` or
//! that names nothing plain (`.`, `..`, empty) matches nothing. Symbolic links, directories
//! and special files are never returned (the sandbox reads regular files only).
//!
//! The cap: at most [`MAX_OUTPUT_FILES`] files and [`MAX_OUTPUT_FILE_BYTES`] bytes in all,
//! taken in name order; a file that would go over is left out (and so is every file after
//! the count is reached). Going over the cap is logged, never an error of the run.

use livexec_core::SourceFile;

/// The most files a run hands back.
pub const MAX_OUTPUT_FILES: usize = 16;
/// The most bytes (all returned files together) a run hands back: 1 MiB.
pub const MAX_OUTPUT_FILE_BYTES: usize = 1 << 20;

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point (the last `*`): linear-ish, no recursion.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether a pattern can name a file of the working dir's top level.
fn usable(pattern: &str) -> bool {
    !pattern.is_empty() && !pattern.contains(['/', '\0']) && pattern != "." && pattern != ".."
}

/// What to ask the sandbox to collect for these patterns: each usable one as it is when the
/// sandbox's own matching (one `*`, no `?`) means the same, else everything (`*`), filtered
/// here by [`glob_match`]. Empty when nothing is to be returned.
pub(crate) fn collect_patterns(patterns: &[String]) -> Vec<String> {
    let usable: Vec<&String> = patterns.iter().filter(|p| usable(p)).collect();
    if usable
        .iter()
        .any(|p| p.contains('?') || p.matches('*').count() > 1)
    {
        return vec!["*".to_owned()];
    }
    usable.into_iter().cloned().collect()
}

/// The collected files that match `patterns`, within the cap (see the module doc), and
/// whether some were left out.
pub(crate) fn returned(
    patterns: &[String],
    collected: Vec<(String, Vec<u8>)>,
) -> (Vec<SourceFile>, bool) {
    let mut out = Vec::new();
    let (mut bytes, mut omitted) = (0usize, false);
    for (name, content) in collected {
        if !patterns.iter().any(|p| usable(p) && glob_match(p, &name)) {
            continue;
        }
        if out.len() == MAX_OUTPUT_FILES || bytes + content.len() > MAX_OUTPUT_FILE_BYTES {
            omitted = true;
            continue;
        }
        bytes += content.len();
        out.push(SourceFile { name, content });
    }
    (out, omitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_star_and_question_mark() {
        for (p, n) in [
            ("out.txt", "out.txt"),
            ("*.png", "plot.png"),
            ("*", "x"),
            ("f?.csv", "f1.csv"),
            ("*a*b*", "xaybz"),
            ("a*", "a"),
        ] {
            assert!(glob_match(p, n), "{p} {n}");
        }
        for (p, n) in [
            ("out.txt", "out.txt2"),
            ("*.png", "plot.jpg"),
            ("f?.csv", "f12.csv"),
            ("?", ""),
            ("*a*b", "ba"),
        ] {
            assert!(!glob_match(p, n), "{p} {n}");
        }
    }

    #[test]
    fn the_sandbox_collects_what_it_can_match_itself_else_everything() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            collect_patterns(&s(&["a.txt", "*.png"])),
            s(&["a.txt", "*.png"])
        );
        assert_eq!(collect_patterns(&s(&["f?.csv"])), s(&["*"]));
        assert_eq!(collect_patterns(&s(&["dir/x", "..", ""])), s(&[]));
    }

    #[test]
    fn the_cap_leaves_files_out_and_says_so() {
        let many: Vec<_> = (0..20)
            .map(|i| (format!("f{i:02}.txt"), vec![b'x'; 10]))
            .collect();
        let (files, omitted) = returned(&["*.txt".to_owned()], many);
        assert_eq!((files.len(), omitted), (MAX_OUTPUT_FILES, true));
        let big = vec![
            ("a".to_owned(), vec![0; MAX_OUTPUT_FILE_BYTES]),
            ("b".to_owned(), vec![0; 1]),
            ("c.skip".to_owned(), vec![0; 1]),
        ];
        let (files, omitted) = returned(&["?".to_owned()], big);
        assert_eq!((files.len(), omitted), (1, true));
    }
}
