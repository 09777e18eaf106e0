//! `marksheet print` and `marksheet decode` (FIG. 20), without a server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::init_logging;
use crate::store::ImageId;

/// Print a mark sheet, or read one.
#[derive(clap::Subcommand)]
pub enum MarksheetCmd {
    /// Stamp the QR code of IMAGE_ID on a page image.
    Print {
        /// The 8-digit image ID.
        image_id: String,
        /// The page to stamp (PNG, JPEG or TIFF; its first page).
        #[arg(long)]
        page: PathBuf,
        /// Where to write the sheet (PNG).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the image ID found on a scanned mark sheet.
    Decode {
        /// The scan (PNG, JPEG or TIFF).
        file: PathBuf,
    },
}

/// Runs `marksheet print` or `marksheet decode`; a sheet that cannot be read exits with 1.
pub fn run(cmd: &MarksheetCmd) -> anyhow::Result<ExitCode> {
    init_logging(None);
    match cmd {
        MarksheetCmd::Print {
            image_id,
            page,
            out,
        } => {
            let id: ImageId = image_id.parse()?;
            let first = crate::paper::decode_first_page(page)?;
            let sheet = crate::marksheet::print_sheet(id, &first);
            sheet
                .save_with_format(out, image::ImageFormat::Png)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("mark sheet for image {id} written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        MarksheetCmd::Decode { file } => match crate::marksheet::decode_file(file) {
            Ok(id) => {
                println!("{id}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("imagecast: {}: {e}", file.display());
                Ok(ExitCode::FAILURE)
            }
        },
    }
}
