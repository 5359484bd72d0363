//! `stampede completions SHELL` and `stampede man`: shell completion
//! scripts (clap_complete) and man pages (clap_mangen), both generated from
//! the parser's own clap definitions ([`super::Cli`]), so a new flag shows
//! up in them without anyone touching this file.

use crate::error::{CommandError, ExitStatus};
use clap::{Args, CommandFactory};
use std::path::{Path, PathBuf};

/// Help of `stampede completions`: where each shell looks for the script.
pub const COMPLETIONS_HELP: &str = "\
Examples:
  stampede completions bash > ~/.local/share/bash-completion/completions/stampede
  source <(stampede completions bash)          # in ~/.bashrc, without the bash-completion package
  stampede completions zsh > ~/.zfunc/_stampede
      # and in ~/.zshrc, before compinit: fpath=(~/.zfunc $fpath); autoload -Uz compinit; compinit
  stampede completions fish > ~/.config/fish/completions/stampede.fish
  stampede completions powershell >> $PROFILE   # PowerShell: loaded by every new session
  stampede completions elvish >> ~/.config/elvish/rc.elv

The script completes subcommands, flags and their fixed values (`--format markdown`,
`--vary agents`); file arguments fall back to the shell's file completion. Open a new
shell (or source the file) to load it; regenerate it after upgrading stampede.";

/// Help of `stampede man`.
pub const MAN_HELP: &str = "\
Examples:
  stampede man --out ~/.local/share/man/man1 && man stampede
  stampede man --out ~/.local/share/man/man1 && man stampede-run
  stampede man | man -l -                       # read it without installing
  sudo stampede man --out /usr/local/share/man/man1

With --out, DIR (created if missing) gets stampede.1 and one page per subcommand
(stampede-run.1, stampede-validate.1, ...); each written file is printed. man finds
~/.local/share/man when ~/.local/bin is on PATH (else add it to MANPATH).";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write stampede.1 and a page per subcommand (stampede-run.1, ...) into
    /// this directory instead of printing stampede.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The command as the binary parses it, named as it is installed.
fn command() -> clap::Command {
    super::Cli::command().bin_name("stampede")
}

/// `cmd` without its hidden flags and subcommands (the flags `run` and
/// `target` give their own child processes). clap_complete's scripts offer
/// hidden items too (clap-rs/clap#3951); the man pages leave them out
/// already. What completion needs is kept: names, about texts, flags with
/// their value hints, fixed values and relations.
fn visible_only(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(visible_only),
        );
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_string());
    }
    out
}

/// `stampede completions SHELL`: the script on stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitStatus, CommandError> {
    let CompletionsArgs { shell } = args;
    let mut cmd = visible_only(&command());
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "stampede", &mut script);
    let script = String::from_utf8(script).map_err(anyhow::Error::from)?;
    crate::report::console::emit(&script);
    Ok(ExitStatus::Passed)
}

/// `stampede man [--out DIR]`: stampede.1 on stdout, or every page into DIR.
pub fn man(args: ManArgs) -> Result<ExitStatus, CommandError> {
    let ManArgs { out } = args;
    // `help` is clap's own subcommand: the pages are the help.
    let mut cmd = command().disable_help_subcommand(true);
    match out {
        None => {
            cmd.build();
            let mut page = Vec::new();
            render_page(&cmd, &mut page).map_err(anyhow::Error::from)?;
            let page = String::from_utf8(page).map_err(anyhow::Error::from)?;
            crate::report::console::emit(&page);
        }
        Some(dir) => {
            let written = write_pages(cmd, &dir).map_err(|e| {
                CommandError::Failed(anyhow::anyhow!("cannot write to {}: {e}", dir.display()))
            })?;
            let mut text = String::new();
            for file in written {
                text.push_str(&format!("wrote {}\n", file.display()));
            }
            crate::report::console::emit(&text);
        }
    }
    Ok(ExitStatus::Passed)
}

/// The main page and one per visible subcommand (nested ones included),
/// into `dir`; returns the files, main page first.
fn write_pages(mut cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let path = dir.join(format!("{}.1", page_name(cmd)));
        let mut page = Vec::new();
        render_page(cmd, &mut page)?;
        std::fs::write(&path, page)?;
        out.push(path);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, out)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    cmd.build();
    let mut written = Vec::new();
    walk(&cmd, dir, &mut written)?;
    Ok(written)
}

/// `stampede-run` for `run`, once the command is built.
fn page_name(cmd: &clap::Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// One page of a built command: clap_mangen's sections, with the
/// `after_help` text (examples, notes, exit codes) as its own EXAMPLES
/// section laid out as written. clap_mangen fills that text as one
/// paragraph, which runs the example command lines together.
fn render_page(cmd: &clap::Command, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    // Every page's footer names the program, not the subcommand.
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("stampede {}", env!("CARGO_PKG_VERSION")));
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    // Every command has at least --help.
    man.render_options_section(w)?;
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    if let Some(text) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        w.write_all(examples_section(&text.to_string()).as_bytes())?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(w)?;
    }
    Ok(())
}

/// An `after_help` text as roff: lines indented by the source (command
/// lines, aligned comments) kept as they are, other lines filled as
/// paragraphs; a leading `Examples:` becomes the section's title.
fn examples_section(text: &str) -> String {
    use roff::{roman, Roff};
    let (title, body) = match text.strip_prefix("Examples:\n") {
        Some(rest) => ("EXAMPLES", rest),
        None => ("NOTES", text),
    };
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    let mut verbatim = false;
    let mut paragraph = true;
    let mut first = true;
    for line in body.lines() {
        if line.trim().is_empty() {
            if verbatim {
                roff.control("fi", []).control("RE", []);
                verbatim = false;
            }
            paragraph = true;
            continue;
        }
        let indented = line.starts_with(' ');
        if indented != verbatim {
            if indented {
                if paragraph && !first {
                    roff.control("sp", []);
                }
                roff.control("RS", ["2"]).control("nf", []);
            } else {
                roff.control("fi", []).control("RE", []);
            }
            verbatim = indented;
        }
        if paragraph && !indented {
            roff.control("PP", []);
        }
        paragraph = false;
        first = false;
        let line = if indented {
            &line[2.min(line.len())..]
        } else {
            line
        };
        roff.text([roman(line)]);
    }
    if verbatim {
        roff.control("fi", []).control("RE", []);
    }
    roff.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_named_after_the_subcommands() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = command().disable_help_subcommand(true);
        let written = write_pages(cmd, dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "stampede.1");
        assert!(names.contains(&"stampede-run.1".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    }
}
