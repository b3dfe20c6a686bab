//! Progress over the denoising steps: a bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use seedling::pipeline::Progress;
use std::io::IsTerminal;

pub struct StepProgress {
    bar: Option<ProgressBar>,
}

impl StepProgress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>9} [{bar:30}] {pos}/{len} steps {elapsed} (eta {eta})",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message("denoising");
            bar
        });
        Self { bar }
    }

    pub fn update(&mut self, p: Progress) {
        match (&self.bar, p) {
            (Some(bar), Progress::Step { done, total }) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
            (Some(bar), Progress::Decoding) => bar.set_message("decoding"),
            (None, Progress::Step { done, total }) => eprintln!("step {done}/{total}"),
            (None, Progress::Decoding) => eprintln!("decoding"),
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
