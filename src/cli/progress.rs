//! Progress over a run of one or many images: one bar over all denoising steps with the image
//! count and an ETA on a terminal; plain lines otherwise. Ctrl-C asks the run to stop after the
//! current step (the pipeline then returns `Interrupted`; no partial file is written).

use indicatif::{ProgressBar, ProgressStyle};
use seedling::pipeline::{Flow, Progress};
use seedling::progress::RunTally;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set by the Ctrl-C handler.
#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Installs the Ctrl-C handler (once per process; later calls reuse the first flag).
    pub fn install() -> StopFlag {
        static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
        let flag = FLAG
            .get_or_init(|| {
                let flag = Arc::new(AtomicBool::new(false));
                let handler_flag = flag.clone();
                // If the handler cannot be installed, Ctrl-C simply ends the process as usual;
                // writes are atomic either way.
                let _ = ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst));
                flag
            })
            .clone();
        StopFlag(flag)
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The bar (on a terminal) or plain lines (otherwise) of a run; the counting is
/// `seedling::progress::RunTally`'s.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    tally: RunTally,
    stop: StopFlag,
}

impl RunProgress {
    /// A run of `images` images of `total_steps` denoising steps in all.
    pub fn new(images: usize, total_steps: u64, stop: StopFlag) -> Self {
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
            stop,
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

    /// The pipeline's callback for a batch of `batch` images.
    pub fn update(&mut self, p: Progress, batch: usize) -> Flow {
        self.tally.update(p, batch);
        match (&self.bar, p) {
            (Some(_), _) => self.show(),
            (None, Progress::Step { done, total }) if self.tally.images() == 1 => {
                eprintln!("step {done}/{total}")
            }
            (None, _) => {}
        }
        if self.stop.is_set() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// One image finished and saved.
    pub fn image_done(&mut self, line: &str) {
        self.tally.image_done();
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
