//! `/run` comments on pull requests: `/run` runs every pull request check, `/run a b` those.

/// What a `/run` comment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    All,
    Checks(Vec<String>),
}

/// The command in a comment body, if the body starts with `/run` (a word of its own). Only the
/// first line counts, so that a comment can explain itself below.
pub fn parse_run_command(body: &str) -> Option<RunCommand> {
    let first = body.trim_start().lines().next()?.trim();
    let rest = first.strip_prefix("/run")?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let mut names: Vec<String> = Vec::new();
    for name in rest.split_whitespace() {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Some(if names.is_empty() { RunCommand::All } else { RunCommand::Checks(names) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse_run_command("/run"), Some(RunCommand::All));
        assert_eq!(parse_run_command("  /run  \nplease"), Some(RunCommand::All));
        assert_eq!(
            parse_run_command("/run a b a"),
            Some(RunCommand::Checks(vec!["a".into(), "b".into()]))
        );
        assert_eq!(parse_run_command("/running"), None);
        assert_eq!(parse_run_command("please /run"), None);
        assert_eq!(parse_run_command(""), None);
    }
}
