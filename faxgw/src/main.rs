//! `imagecast-faxgw`: parses the command line, sets up logging (to stderr) and runs
//! [`imagecast_faxgw::cli`].

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = imagecast_faxgw::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("imagecast-faxgw: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(imagecast_faxgw::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("imagecast-faxgw: {e:#}");
            1
        }
    };
    drop(runtime);
    std::process::exit(code);
}
