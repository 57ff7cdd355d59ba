//! `livegames smoke`: flags, the optional embedded server, output and exit code.

use std::io::IsTerminal;

use super::args::SmokeArgs;
use super::exit::Exit;
use crate::smoke::{SmokeConfig, render};

pub fn run(args: SmokeArgs) -> Exit {
    let schemas = match crate::inspect::load_schemas(args.schema_dir.as_deref(), args.strict) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("livegames smoke: {e}");
            return Exit::Usage;
        }
    };
    let base = match args.url.as_deref().map(SmokeArgs::http_base).transpose() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("livegames smoke: {e}");
            return Exit::Usage;
        }
    };
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livegames smoke: cannot start the runtime: {e}");
            return Exit::Failed;
        }
    };
    let report = rt.block_on(async {
        let mut embedded = None;
        let base = match base {
            Some(b) => b,
            None => match start_embedded(args.rate).await {
                Ok(server) => {
                    let url = server.http_url();
                    eprintln!("(no --url: checking an embedded livegames serve at {url})");
                    embedded = Some(server);
                    url
                }
                Err(e) => {
                    eprintln!("livegames smoke: cannot start the embedded server: {e}");
                    return None;
                }
            },
        };
        let config = SmokeConfig {
            base,
            game: args.game.clone(),
            messages: args.messages,
            timeout: args.timeout,
            max_skew: args.max_skew,
            heartbeat: args.heartbeat,
            checks: args.checks.clone(),
            admin_token: args.admin_token.clone(),
        };
        let report = crate::smoke::run(&config, &schemas).await;
        if let Some(server) = embedded {
            let _ = server.stop().await;
        }
        Some(report)
    });
    let Some(report) = report else {
        return Exit::Failed;
    };
    if args.json {
        println!("{}", render::json(&report));
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", render::text(&report, render::Palette::new(colour)));
    }
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, render::junit(&report)) {
            eprintln!("livegames smoke: cannot write {}: {e}", path.display());
            return Exit::Usage;
        }
    }
    if report.unreachable.is_some() {
        Exit::Unreachable
    } else if report.passed {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

async fn start_embedded(rate: f64) -> Result<crate::serve::ServerHandle, String> {
    let server = crate::serve::spawn(crate::serve::ServeConfig::embedded(rate), "127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    super::load::wait_for_live_games(&server.http_url()).await;
    Ok(server)
}
