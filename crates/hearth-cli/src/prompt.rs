//! Asking the person at the terminal: passphrases (never echoed), names, yes or no. Scripts
//! use the environment instead (`HEARTH_PASSPHRASE`, `HEARTH_NAME`) and flags (`--yes`,
//! `--accept-guidelines`).

use std::io::{BufRead, IsTerminal, Write};

use hearth_store::Passphrase;

use crate::api::ErrorCode;
use crate::failure::Failure;

/// The passphrase variable.
pub const PASSPHRASE_VAR: &str = "HEARTH_PASSPHRASE";
/// The display name variable.
pub const NAME_VAR: &str = "HEARTH_NAME";

fn passphrase_from_env() -> Option<Passphrase> {
    std::env::var(PASSPHRASE_VAR)
        .ok()
        .filter(|p| !p.is_empty())
        .map(Passphrase::new)
}

fn ask_secret(prompt: &str) -> Result<String, Failure> {
    rpassword::prompt_password(prompt).map_err(|_| {
        Failure::invalid("there is no terminal to ask for the passphrase")
            .hint(format!("set {PASSPHRASE_VAR} for scripts"))
    })
}

/// The passphrase of an existing profile: `HEARTH_PASSPHRASE`, or asked once.
pub fn passphrase() -> Result<Passphrase, Failure> {
    if let Some(p) = passphrase_from_env() {
        return Ok(p);
    }
    let p = ask_secret("Passphrase: ")?;
    if p.is_empty() {
        return Err(Failure::new(
            ErrorCode::WrongPassphrase,
            "wrong passphrase: it is empty",
        ));
    }
    Ok(Passphrase::new(p))
}

/// A new passphrase: `HEARTH_PASSPHRASE`, or asked twice (they must match).
pub fn new_passphrase() -> Result<Passphrase, Failure> {
    if let Some(p) = passphrase_from_env() {
        return Ok(p);
    }
    eprintln!(
        "Choose a passphrase. It encrypts your profile on this device; nobody can recover it for you."
    );
    let first = ask_secret("New passphrase: ")?;
    if first.chars().count() < 8 {
        return Err(Failure::invalid(
            "the passphrase is too short: use at least 8 characters (a few words is best)",
        ));
    }
    let second = ask_secret("Same passphrase again: ")?;
    if first != second {
        return Err(Failure::invalid(
            "the two passphrases differ: nothing was created; try again",
        ));
    }
    Ok(Passphrase::new(first))
}

/// Whether a person is at the terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

fn read_line(prompt: &str) -> Result<String, Failure> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// The display name: the flag, `HEARTH_NAME`, or asked.
pub fn display_name(given: Option<String>, circle: &str) -> Result<String, Failure> {
    if let Some(n) = given.filter(|n| !n.trim().is_empty()) {
        return Ok(n.trim().to_owned());
    }
    if let Ok(n) = std::env::var(NAME_VAR)
        && !n.trim().is_empty()
    {
        return Ok(n.trim().to_owned());
    }
    if !interactive() {
        return Err(Failure::invalid(format!(
            "give the name the members of `{circle}` will see for you with --as NAME (or set {NAME_VAR})"
        )));
    }
    let n = read_line(&format!(
        "Your name in `{circle}` (what its members will see): "
    ))?;
    if n.is_empty() {
        return Err(Failure::invalid("a name is needed: nothing was done"));
    }
    Ok(n)
}

/// Asks a yes-or-no question; `None` when nobody can answer.
pub fn confirm(question: &str) -> Result<Option<bool>, Failure> {
    if !interactive() {
        return Ok(None);
    }
    let answer = read_line(&format!("{question} [y/N] "))?;
    Ok(Some(matches!(
        answer.to_ascii_lowercase().as_str(),
        "y" | "yes"
    )))
}
