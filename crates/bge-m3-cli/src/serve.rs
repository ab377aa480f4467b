//! `bge-m3 serve`: the model argument of the other subcommands, then the server's flags.

use crate::model_source::ModelArgs;

/// Arguments of `bge-m3 serve`.
#[derive(Debug, clap::Args)]
pub struct ServeCommand {
    #[command(flatten)]
    model: ModelArgs,

    #[command(flatten)]
    serve: bge_m3_server::ServeArgs,
}

/// Resolves the model (downloading a Hub repository when needed) and serves it.
pub fn run(command: ServeCommand) -> anyhow::Result<()> {
    let mut args = command.serve;
    args.model = command.model.resolve()?;
    if args.model_name.is_none() {
        // A Hub snapshot folder is named by its commit hash, so the id names it better.
        args.model_name = command.model.repository();
    }
    bge_m3_server::run(&args)
}
