use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal() && std::io::stderr().is_terminal();
    let color = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let progress = std::io::stderr().is_terminal();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let mut input = stdin.lock();
    let mut io = tflock::Io {
        out: &mut out,
        err: &mut err,
        input: &mut input,
        interactive,
        color,
        progress,
    };
    let code = tflock::run(std::env::args_os(), &mut io, &tflock::DefaultResolver);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
