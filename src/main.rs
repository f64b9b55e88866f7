use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = ccc::cli::Cli::parse();
    match ccc::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
