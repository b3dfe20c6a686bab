//! Progress over a run of one or many images: one bar over all denoising steps with the image
//! count and an ETA on a terminal; plain lines otherwise. Ctrl-C asks the run to stop after the
//! current step (the library then returns `Interrupted`; no partial file is written).

use indicatif::{ProgressBar, ProgressStyle};
use seedling::pipeline::Progress;
use seedling::progress::RunTally;
use seedling::session::StopFlag;
use std::io::IsTerminal;

/// A stop flag that Ctrl-C sets (the handler is installed once per process; later calls share
/// the first flag). If the handler cannot be installed, Ctrl-C simply ends the process as
/// usual; writes are atomic either way.
pub fn ctrl_c_stop() -> StopFlag {
    static FLAG: std::sync::OnceLock<StopFlag> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = StopFlag::new();
        let handler_flag = flag.clone();
        let _ = ctrlc::set_handler(move || handler_flag.stop());
        flag
    })
    .clone()
}

/// The bar (on a terminal) or plain lines (otherwise) of a run; the counting is the library's
/// `RunTally`, shown as it reports it.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    tally: RunTally,
}

impl RunProgress {
    /// A run of `images` images of `total_steps` denoising steps in all.
    pub fn new(images: usize, total_steps: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps);
            let template = if images > 1 {
                "{msg} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed, eta {eta}"
            } else {
                "{msg} [{bar:30}] {pos}/{len} steps, {elapsed} elapsed"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar
        });
        let p = Self {
            bar,
            tally: RunTally::new(images, total_steps),
        };
        p.show();
        p
    }

    fn show(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.tally.position());
            bar.set_message(self.tally.message());
        }
    }

    /// The run's count, as the library reports it.
    pub fn set(&mut self, tally: &RunTally) {
        self.tally = tally.clone();
    }

    /// A pipeline event and the count after it.
    pub fn update(&mut self, p: Progress, tally: &RunTally) {
        self.set(tally);
        match (&self.bar, p) {
            (Some(_), _) => self.show(),
            (None, Progress::Step { done, total }) if self.tally.images() == 1 => {
                eprintln!("step {done}/{total}")
            }
            (None, _) => {}
        }
    }

    /// One image finished and saved: its line.
    pub fn image_done(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
        self.show();
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
