//! Counting a run's progress: denoising steps over many images rendered in batches, and which
//! images are in hand. Kept apart from drawing it (the CLI's bar) so the counts can be tested.

use crate::pipeline::Progress;

/// Where a run of many images stands. Fed the pipeline's events for each batch, and told when
/// each image is finished.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTally {
    images: usize,
    total_steps: u64,
    done_images: usize,
    /// Steps of the batches finished so far: each batch's steps times its images.
    steps_before: u64,
    position: u64,
    /// The batch in hand: its first image (0-based) and its size; `None` between batches.
    batch: Option<(usize, usize)>,
    decoding: bool,
}

impl RunTally {
    /// A run of `images` images of `total_steps` denoising steps in all (the sum of their
    /// recipes' steps).
    pub fn new(images: usize, total_steps: u64) -> Self {
        RunTally {
            images,
            total_steps,
            done_images: 0,
            steps_before: 0,
            position: 0,
            batch: None,
            decoding: false,
        }
    }

    /// A pipeline event of the batch of `n` images in hand.
    pub(crate) fn update(&mut self, p: Progress, n: usize) {
        if self.batch.is_none() {
            self.batch = Some((self.done_images, n));
            self.decoding = false;
        }
        match p {
            Progress::Step { done, total } => {
                self.position = self.steps_before + (done * n) as u64;
                if done == total {
                    self.steps_before += (total * n) as u64;
                }
            }
            Progress::Decoding => self.decoding = true,
        }
    }

    /// One image of the batch in hand is finished (saved).
    pub(crate) fn image_done(&mut self) {
        self.done_images += 1;
        if let Some((start, n)) = self.batch {
            if self.done_images >= start + n {
                self.batch = None;
            }
        }
    }

    /// Images in the run.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Denoising steps done, over all images.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Denoising steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// What is happening, e.g. `denoising 3/4`, `decoding 1-2/4` (a batch of two); for a run of
    /// one image just `denoising` or `decoding`.
    pub fn message(&self) -> String {
        let what = if self.decoding {
            "decoding"
        } else {
            "denoising"
        };
        if self.images <= 1 {
            return what.to_string();
        }
        let of = self.images;
        match self.batch {
            Some((start, 1)) => format!("{what} {}/{of}", start + 1),
            Some((start, n)) => format!("{what} {}-{}/{of}", start + 1, start + n),
            // Between batches: the next image, or, once every image is done, just that (this
            // once said `denoising 5/4`).
            None if self.done_images < of => format!("denoising {}/{of}", self.done_images + 1),
            None => format!("done {of}/{of}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::step_progress;

    /// Feeds `tally` what the pipeline reports for one batch of `n` images whose sampler makes
    /// `calls` UNet calls for `steps` steps, then finishes its images; returns every message
    /// shown and every position reached.
    fn run_batch(
        tally: &mut RunTally,
        n: usize,
        calls: usize,
        steps: usize,
    ) -> (Vec<String>, Vec<u64>) {
        let (mut messages, mut positions) = (Vec::new(), Vec::new());
        for call in 0..calls {
            if let Some(p) = step_progress(call, calls, steps) {
                tally.update(p, n);
                messages.push(tally.message());
                positions.push(tally.position());
            }
        }
        tally.update(Progress::Decoding, n);
        messages.push(tally.message());
        for _ in 0..n {
            tally.image_done();
            messages.push(tally.message());
        }
        (messages, positions)
    }

    /// `--count 4 --batch-size 2` with PNDM (26 UNet calls for 25 steps) ended at `104/100
    /// steps` and `denoising 5/4`: the bar counts steps, and names the images in hand.
    #[test]
    fn a_batched_pndm_run_ends_at_its_total_and_names_the_images_in_hand() {
        let mut tally = RunTally::new(4, 100);
        let (first, p1) = run_batch(&mut tally, 2, 26, 25);
        let (second, p2) = run_batch(&mut tally, 2, 26, 25);
        let positions = [p1, p2].concat();
        assert_eq!(positions.len(), 50, "one position per step");
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        assert_eq!(positions[0], 2, "the first step of a batch of two");
        assert_eq!(tally.position(), tally.total_steps());
        assert_eq!(first[0], "denoising 1-2/4");
        assert_eq!(first[25], "decoding 1-2/4");
        assert_eq!(second[0], "denoising 3-4/4");
        assert_eq!(second[25], "decoding 3-4/4");
        for m in first.iter().chain(&second) {
            assert!(!m.contains("5/4"), "{m}");
        }
    }

    #[test]
    fn single_images_and_uneven_batches_count_every_step_once() {
        let mut one = RunTally::new(1, 25);
        let (messages, _) = run_batch(&mut one, 1, 26, 25);
        assert_eq!(one.position(), 25);
        assert_eq!(messages[0], "denoising");
        assert_eq!(messages[25], "decoding");
        // Three images of 4 steps in batches of two: 2 + 1.
        let mut three = RunTally::new(3, 12);
        let (a, _) = run_batch(&mut three, 2, 4, 4);
        let (b, _) = run_batch(&mut three, 1, 4, 4);
        assert_eq!(three.position(), 12);
        assert_eq!(a[0], "denoising 1-2/3");
        assert_eq!(b[0], "denoising 3/3");
        assert_eq!(b.last().unwrap(), "done 3/3");
    }
}
