//! Progress over a run of one or many images: one bar over all denoising steps with the image
//! count and an ETA on a terminal; plain lines otherwise. Ctrl-C asks the run to stop after the
//! current step (the pipeline then returns `Interrupted`; no partial file is written).

use indicatif::{ProgressBar, ProgressStyle};
use seedling::pipeline::{Flow, Progress};
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

pub struct RunProgress {
    bar: Option<ProgressBar>,
    images: usize,
    done_images: usize,
    done_steps_before: u64,
    stop: StopFlag,
}

impl RunProgress {
    /// A run of `images` images of `total_steps` denoising steps in all.
    pub fn new(images: usize, total_steps: usize, stop: StopFlag) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_steps as u64);
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
        let mut p = Self {
            bar,
            images,
            done_images: 0,
            done_steps_before: 0,
            stop,
        };
        p.set_message("denoising");
        p
    }

    fn set_message(&mut self, what: &str) {
        if let Some(bar) = &self.bar {
            if self.images > 1 {
                bar.set_message(format!("{what} {}/{}", self.done_images + 1, self.images));
            } else {
                bar.set_message(what.to_string());
            }
        }
    }

    /// The pipeline's callback for a batch of `batch` images.
    pub fn update(&mut self, p: Progress, batch: usize) -> Flow {
        match p {
            Progress::Step { done, total } => {
                match &self.bar {
                    Some(bar) => bar.set_position(self.done_steps_before + (done * batch) as u64),
                    None if self.images == 1 => eprintln!("step {done}/{total}"),
                    None => {}
                }
                if done == total {
                    self.done_steps_before += (total * batch) as u64;
                }
            }
            Progress::Decoding => self.set_message("decoding"),
        }
        if self.stop.is_set() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// One image finished and saved.
    pub fn image_done(&mut self, line: &str) {
        self.done_images += 1;
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
        self.set_message("denoising");
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
