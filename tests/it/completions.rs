//! Shell completions and man pages as a user installs them: the scripts
//! `stampede completions SHELL` prints, loaded by the real shells and asked
//! to complete command lines; the pages `stampede man --out DIR` writes,
//! rendered by groff. What is expected comes from the library's own clap
//! definitions ([`stampede::cli::Cli`]), so a new subcommand or flag is
//! checked without editing this file.
//!
//! bash is always there; zsh, fish and groff are installed by `.ci/run`.
//! In CI (`CI` set) a missing one fails its test; elsewhere the test prints
//! that it skipped and why. PowerShell is in no Debian archive: its script
//! is parsed where `pwsh` is installed, and otherwise only its registration
//! is checked (said on stderr, in CI too).

use crate::common::succeeded;
use clap::{CommandFactory, ValueEnum};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn stampede() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("stampede").unwrap();
    cmd.env_remove("STAMPEDE_LOG");
    cmd
}

/// `stampede completions SHELL`, saved in `dir` as a user would.
fn script(shell: &str, dir: &Path) -> PathBuf {
    let out = stampede().args(["completions", shell]).output().unwrap();
    succeeded(&out, &format!("stampede completions {shell}"));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("stampede.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// The subcommands a user sees (`stampede --help`), from clap's definitions.
fn subcommands() -> BTreeSet<String> {
    let names: BTreeSet<String> = stampede::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    for expected in ["run", "validate", "completions", "man"] {
        assert!(names.contains(expected), "{names:?}");
    }
    names
}

/// The hidden flags of `run` (what the parent of `--processes` gives its
/// children): never offered, never documented.
fn hidden_run_flags() -> Vec<String> {
    let cmd = stampede::cli::Cli::command();
    let run = cmd.find_subcommand("run").expect("a `run` subcommand");
    let hidden: Vec<String> = run
        .get_arguments()
        .filter(|a| a.is_hide_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    assert!(!hidden.is_empty(), "run has hidden flags to leave out");
    hidden
}

/// Is `tool` on PATH? If not: a panic in CI, else a skip message.
fn installed(tool: &str, untested: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()));
    if !found {
        let message =
            format!("{tool} missing: {untested} was NOT tested (.ci/run installs it with apt-get)");
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!! SKIPPED: {message}\n");
    }
    found
}

/// Runs `cmd`; its stdout, after checking it succeeded with nothing on stderr.
fn quiet_stdout(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    succeeded(&out, what);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "{what} said on stderr: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// What bash offers for the command line `words` (the last one is the word
/// being completed): the script is sourced, and the function that
/// `complete -p stampede` registered is called as readline calls it, with
/// COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT and its three arguments,
/// in the script's directory.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    const DRIVER: &str = r#"
source "$1" || exit 90
shift
spec=$(complete -p stampede) || exit 91
fn=${spec##*-F }
fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" stampede "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = quiet_stdout(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", DRIVER, "bash"])
            .arg(script)
            .args(words)
            .current_dir(script.parent().unwrap()),
        &format!("bash completing {words:?}"),
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn bash_completes_subcommands_flags_and_their_values() {
    if !installed("bash", "the bash completion script") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = script("bash", tmp.path());

    assert_eq!(bash_complete(&script, &["stampede", "ru"]), ["run"]);
    assert_eq!(
        bash_complete(&script, &["stampede", "comp"]),
        ["compare", "completions"]
    );
    // Every subcommand, plus clap's `help`, and nothing else.
    let offered: BTreeSet<String> = bash_complete(&script, &["stampede", ""])
        .into_iter()
        .filter(|w| !w.starts_with('-'))
        .collect();
    let mut expected = subcommands();
    expected.insert("help".into());
    assert_eq!(offered, expected);

    assert_eq!(
        bash_complete(&script, &["stampede", "run", "--qu"]),
        ["--quiet"]
    );
    assert_eq!(
        bash_complete(&script, &["stampede", "run", "s.toml", "--allow-"]),
        ["--allow-exec"]
    );
    let run_flags = bash_complete(&script, &["stampede", "run", "--"]);
    for flag in [
        "--quiet",
        "--out",
        "--set",
        "--processes",
        "--log",
        "--help",
    ] {
        assert!(
            run_flags.iter().any(|f| f == flag),
            "{flag} in {run_flags:?}"
        );
    }
    for hidden in hidden_run_flags() {
        assert!(
            !run_flags.contains(&hidden),
            "hidden {hidden} offered: {run_flags:?}"
        );
    }

    // Fixed values, as clap knows them.
    let formats: BTreeSet<String> = stampede::cli::CompareFormat::value_variants()
        .iter()
        .map(|v| v.to_possible_value().unwrap().get_name().to_string())
        .collect();
    let offered = bash_complete(&script, &["stampede", "compare", "a", "b", "--format", ""]);
    assert_eq!(offered.into_iter().collect::<BTreeSet<_>>(), formats);
    assert_eq!(
        bash_complete(&script, &["stampede", "completions", "f"]),
        ["fish"]
    );
    // (clap's bash script offers the flags too where a value may go.)
    let shells = bash_complete(&script, &["stampede", "completions", ""]);
    assert_eq!(
        shells
            .into_iter()
            .filter(|w| !w.starts_with('-'))
            .collect::<BTreeSet<_>>(),
        set(&["bash", "elvish", "fish", "powershell", "zsh"])
    );
    // A directory flag completes file names.
    std::fs::create_dir(tmp.path().join("reports-old")).unwrap();
    assert_eq!(
        bash_complete(&script, &["stampede", "run", "s.toml", "--out", "reports-"]),
        ["reports-old"]
    );
}

/// What fish offers for `line` (`complete -C`, the completions fish would
/// show at the end of that line), the script sourced, no user config, in
/// `home`.
fn fish_complete(script: &Path, home: &Path, line: &str) -> Vec<String> {
    let out = quiet_stdout(
        Command::new("fish")
            .args([
                "--no-config",
                "-c",
                "source $argv[1]; and complete -C $argv[2]",
            ])
            .arg(script)
            .arg(line)
            .current_dir(home)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache")),
        &format!("fish completing {line:?}"),
    );
    // `candidate<TAB>description`
    out.lines()
        .map(|l| l.split('\t').next().unwrap_or("").to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn fish_loads_the_script_and_completes_from_it() {
    if !installed("fish", "the fish completion script") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = script("fish", tmp.path());
    quiet_stdout(
        Command::new("fish").arg("--no-execute").arg(&script),
        "fish --no-execute",
    );

    assert_eq!(fish_complete(&script, tmp.path(), "stampede ru"), ["run"]);
    let offered: BTreeSet<String> = fish_complete(&script, tmp.path(), "stampede ")
        .into_iter()
        .collect();
    for sub in subcommands() {
        assert!(offered.contains(&sub), "{sub} in {offered:?}");
    }
    assert_eq!(
        fish_complete(&script, tmp.path(), "stampede run --qu"),
        ["--quiet"]
    );
    let run_flags = fish_complete(&script, tmp.path(), "stampede run --");
    assert!(
        run_flags.contains(&"--allow-exec".to_string()),
        "{run_flags:?}"
    );
    for hidden in hidden_run_flags() {
        assert!(
            !run_flags.contains(&hidden),
            "hidden {hidden} offered: {run_flags:?}"
        );
    }
    let formats: BTreeSet<String> =
        fish_complete(&script, tmp.path(), "stampede compare a b --format ")
            .into_iter()
            .collect();
    assert_eq!(formats, set(&["json", "markdown", "text"]));
    // The scenario argument completes file names.
    std::fs::write(tmp.path().join("shop.toml"), "").unwrap();
    assert_eq!(
        fish_complete(&script, tmp.path(), "stampede validate sh"),
        ["shop.toml"]
    );
}

/// What zsh makes of `line` when the user presses TAB: an interactive zsh
/// in a pseudo-terminal (zsh/zpty), the script found on `fpath` by
/// compinit as ~/.zshrc would set it up, the line typed, TAB, then a key
/// bound to a widget that prints the edit buffer and exits. A unique
/// completion is inserted into the buffer; no match leaves it as typed.
fn zsh_complete(fpath_dir: &Path, line: &str) -> String {
    const DRIVER: &str = r#"
zmodload zsh/zpty || exit 90
zpty z zsh -f -i || exit 91
zpty -w z "PS1='' RPROMPT=''; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z "print-buffer() { print -r -- \"<BUFFER>\$BUFFER</BUFFER>\"; exit }; zle -N print-buffer; bindkey '^X' print-buffer; print READY"
while zpty -r z out; do [[ $out == READY* ]] && break; done
zpty -w -n z "$2"$'\t\x18'
while zpty -r z out; do
    if [[ $out == *'<BUFFER>'* ]]; then
        out=${out#*<BUFFER>}
        print -r -- "${out%%</BUFFER>*}"
        exit 0
    fi
done
exit 92
"#;
    let out = assert_cmd::Command::new("zsh")
        .args(["-f", "-c", DRIVER, "zsh"])
        .arg(fpath_dir)
        .arg(line)
        .env("HOME", fpath_dir)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    succeeded(&out, &format!("zsh completing {line:?}"));
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

#[test]
fn zsh_parses_loads_and_completes_from_the_script() {
    if !installed("zsh", "the zsh completion script") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = script("zsh", tmp.path());
    quiet_stdout(Command::new("zsh").arg("-n").arg(&script), "zsh -n");
    // As ~/.zshrc loads it: compinit, then the function file; compdef
    // binds it to `stampede`.
    let registered = quiet_stdout(
        Command::new("zsh")
            .args([
                "-f",
                "-c",
                "autoload -Uz compinit && compinit -u -D && source $1 && \
                 print -r -- ${_comps[stampede]} && whence -w _stampede",
                "zsh",
            ])
            .arg(&script)
            .env("HOME", tmp.path()),
        "zsh loading the script",
    );
    assert_eq!(registered, "_stampede\n_stampede: function\n");
    // Every subcommand is in the function's list (`'run:Play a scenario…'`).
    let text = std::fs::read_to_string(&script).unwrap();
    for sub in subcommands() {
        assert!(
            text.contains(&format!("'{sub}:")),
            "{sub} in the zsh script"
        );
    }
    for hidden in hidden_run_flags() {
        assert!(!text.contains(&hidden), "hidden {hidden} in the zsh script");
    }

    // TAB in a real interactive zsh, the script installed as `_stampede`.
    let fpath = tmp.path().join("zfunc");
    std::fs::create_dir(&fpath).unwrap();
    std::fs::copy(&script, fpath.join("_stampede")).unwrap();
    assert_eq!(zsh_complete(&fpath, "stampede ru"), "stampede run ");
    assert_eq!(
        zsh_complete(&fpath, "stampede run --qu"),
        "stampede run --quiet "
    );
    assert_eq!(
        zsh_complete(&fpath, "stampede compare a b --format mar"),
        "stampede compare a b --format markdown "
    );
    assert_eq!(
        zsh_complete(&fpath, "stampede completions po"),
        "stampede completions powershell "
    );
    let hidden = &hidden_run_flags()[0];
    let typed = format!("stampede run {}", &hidden[..hidden.len() - 1]);
    assert_eq!(
        zsh_complete(&fpath, &typed),
        typed,
        "hidden {hidden} completed"
    );
}

#[test]
fn powershell_script_registers_a_completer_and_parses_where_pwsh_is() {
    let tmp = tempfile::tempdir().unwrap();
    let script = script("powershell", tmp.path());
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.contains("Register-ArgumentCompleter -Native -CommandName 'stampede'"),
        "{text}"
    );
    for sub in subcommands() {
        assert!(text.contains(&format!("'stampede;{sub}'")), "{sub}");
    }
    for hidden in hidden_run_flags() {
        assert!(!text.contains(&hidden), "hidden {hidden} in the script");
    }
    let pwsh = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("pwsh").is_file()));
    if !pwsh {
        eprintln!(
            "\n!!! pwsh missing (no Debian package): the PowerShell script was NOT parsed by \
             PowerShell, only its registration checked\n"
        );
        return;
    }
    let errors = quiet_stdout(
        Command::new("pwsh")
            .args(["-NoProfile", "-NonInteractive", "-Command"])
            .arg(
                "$e = $null; [System.Management.Automation.Language.Parser]::ParseFile($args[0], \
                 [ref]$null, [ref]$e) | Out-Null; $e.Count",
            )
            .arg(&script),
        "pwsh parsing the script",
    );
    assert_eq!(errors.trim(), "0");
}

/// `page` rendered as man does (groff, man macros, input decoded by
/// preconv), as plain text; fails on any groff warning.
fn groff(page: &Path) -> String {
    quiet_stdout(
        Command::new("groff")
            .args([
                "-k",
                "-man",
                "-Tutf8",
                "-ww",
                "-P-cbou",
                "-rLL=120n",
                "-rHY=0",
            ])
            .arg(page)
            .env("LC_ALL", "C.UTF-8"),
        &format!("groff {}", page.display()),
    )
}

#[test]
fn man_pages_cover_every_subcommand_and_render_without_warnings() {
    if !installed("groff", "rendering the man pages") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("share/man/man1");
    let out = stampede()
        .args(["man", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    succeeded(&out, "stampede man --out");
    let stdout = String::from_utf8(out.stdout).unwrap();

    let mut expected = set(&["stampede.1"]);
    expected.extend(subcommands().iter().map(|s| format!("stampede-{s}.1")));
    let written: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected);
    for file in &expected {
        assert!(
            stdout.contains(&format!("wrote {}", dir.join(file).display())),
            "{stdout}"
        );
    }

    // A directory that cannot be made: exit 3, naming it.
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    stampede()
        .args(["man", "--out"])
        .arg(blocker.join("man1"))
        .assert()
        .code(3)
        .stderr(predicates::str::contains(format!(
            "cannot write to {}",
            blocker.join("man1").display()
        )));

    // Without --out: the main page on stdout, the same as the file.
    let out = stampede().arg("man").output().unwrap();
    succeeded(&out, "stampede man");
    assert_eq!(out.stdout, std::fs::read(dir.join("stampede.1")).unwrap());

    let main = groff(&dir.join("stampede.1"));
    assert!(main.contains("NAME"), "{main}");
    for sub in subcommands() {
        assert!(
            main.contains(&format!("stampede-{sub}(1)")),
            "{sub} in {main}"
        );
    }
    assert!(main.contains("--log <LOG>"), "{main}");
    // The examples stay one command a line, and UTF-8 survives.
    assert!(
        main.lines()
            .any(|l| l.trim() == "stampede run scenarios/quickstart.toml"),
        "{main}"
    );
    assert!(main.contains("0 all SLOs held · 1 an SLO failed"), "{main}");

    let run = groff(&dir.join("stampede-run.1"));
    assert!(run.contains("--quiet"), "{run}");
    assert!(run.contains("No progress lines and no tables"), "{run}");
    assert!(run.contains("EXAMPLES"), "{run}");
    for hidden in hidden_run_flags() {
        assert!(!run.contains(&hidden), "hidden {hidden} documented: {run}");
    }
    // Every other page renders cleanly too.
    for file in &expected {
        let text = groff(&dir.join(file));
        let name = file.trim_end_matches(".1");
        assert!(text.contains(&format!("{name}(1)")), "{file}: {text}");
    }
}
