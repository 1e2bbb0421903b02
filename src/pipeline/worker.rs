//! A detection worker. Die-to-die (the default), it keeps a sliding window
//! of up to three consecutive dies of a row (left neighbour, die under
//! test, right neighbour) and inspects each die once both its neighbours
//! have arrived, or the golden die stands in for a missing one. Die-to-golden
//! and die-to-reference (the recipe's choice), it inspects each die as it
//! arrives against that one image, whose profiles are computed once.

use super::detect::{Detector, Reference};
use super::display::DisplayFrame;
use super::result::DieResult;
use super::telemetry::PipelineTelemetry;
use super::thumbnails::ThumbnailTap;
use super::Profiles;
use crate::hot::{Frame, ThreadHealth};
use crate::machine::{DieSite, SimFaults};
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// What the recipe compares every die with.
#[derive(Clone, Default)]
pub enum ReferenceSource {
    /// Both row neighbours; the golden die stands in for a missing one and
    /// arbitrates where both neighbours differ from the die.
    #[default]
    DieToDie,
    /// The taught golden die alone, for every die.
    DieToGolden,
    /// A reference image given with the recipe (8-bit, the image size),
    /// for every die.
    DieToReference(Arc<[u8]>),
}

impl ReferenceSource {
    /// The recipe's spelling.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DieToDie => "die_to_die",
            Self::DieToGolden => "die_to_golden",
            Self::DieToReference(_) => "die_to_reference",
        }
    }
}

impl std::fmt::Debug for ReferenceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DieToReference(px) => write!(f, "DieToReference({} px)", px.len()),
            other => f.write_str(other.name()),
        }
    }
}

/// The single image `inspect_against` uses, with its profiles.
struct SingleReference {
    /// `None`: the golden die.
    pixels: Option<Arc<[u8]>>,
    profiles: Option<Profiles>,
}

pub enum WorkItem {
    Frame(Frame),
    /// The row (or plan) ended: inspect what is still held.
    Flush,
    Stop,
}

struct Slot {
    frame: Option<Frame>,
    profiles: Profiles,
}

pub struct Worker {
    sites: Arc<[DieSite]>,
    width: usize,
    golden: Arc<[u8]>,
    golden_profiles: Profiles,
    /// Set for die-to-golden and die-to-reference: every die is inspected
    /// against this one image as it arrives.
    single: Option<SingleReference>,
    detector: Detector,
    slots: [Slot; 3],
    prev: Option<usize>,
    cur: Option<usize>,
    result: DieResult,
    telemetry: Arc<PipelineTelemetry>,
    results: Sender<DieResult>,
    thumbnails: Option<ThumbnailTap>,
    display: Option<Arc<DisplayFrame>>,
    /// Fault injection of the simulated tool (a worker panic at a die).
    faults: Option<Arc<SimFaults>>,
}

impl Worker {
    pub fn new(
        sites: Arc<[DieSite]>,
        golden: Arc<[u8]>,
        detector: Detector,
        width: u32,
        height: u32,
        telemetry: Arc<PipelineTelemetry>,
        results: Sender<DieResult>,
    ) -> Self {
        let mut golden_profiles = Profiles::new(width, height);
        golden_profiles.compute(&golden);
        Self {
            sites,
            width: width as usize,
            golden,
            golden_profiles,
            single: None,
            detector,
            slots: std::array::from_fn(|_| Slot {
                frame: None,
                profiles: Profiles::new(width, height),
            }),
            prev: None,
            cur: None,
            result: DieResult::default(),
            telemetry,
            results,
            thumbnails: None,
            display: None,
            faults: None,
        }
    }

    /// What every die is compared with (default: die-to-die). The
    /// reference image's profiles are computed here, once.
    pub fn with_reference(mut self, source: &ReferenceSource) -> Self {
        self.single = match source {
            ReferenceSource::DieToDie => None,
            ReferenceSource::DieToGolden => Some(SingleReference {
                pixels: None,
                profiles: None,
            }),
            ReferenceSource::DieToReference(px) => {
                let (w, h) = (self.width as u32, (px.len() / self.width.max(1)) as u32);
                let mut profiles = Profiles::new(w, h);
                profiles.compute(px);
                Some(SingleReference {
                    pixels: Some(Arc::clone(px)),
                    profiles: Some(profiles),
                })
            }
        };
        self
    }

    /// Offer each inspected die to the live view.
    pub fn with_display(mut self, display: Option<Arc<DisplayFrame>>) -> Self {
        self.display = display;
        self
    }

    /// Injected faults to honour (simulated tool only).
    pub fn with_faults(mut self, faults: Option<Arc<SimFaults>>) -> Self {
        self.faults = faults;
        self
    }

    /// Cut a thumbnail around each defect found.
    pub fn with_thumbnails(mut self, tap: Option<ThumbnailTap>) -> Self {
        self.thumbnails = tap;
        self
    }

    /// Serves work items until `Stop` or the channel closes; beats per item
    /// and marks itself idle while it waits for one.
    pub fn run(mut self, rx: Receiver<WorkItem>, health: &ThreadHealth) {
        loop {
            health.idle();
            let Ok(item) = rx.recv() else { break };
            health.beat();
            self.telemetry.queue_depth.set(rx.len() as u64);
            match item {
                WorkItem::Frame(f) => {
                    let latency = self.telemetry.now_ns().saturating_sub(f.meta.capture_ns);
                    self.telemetry.handoff_latency.record(latency);
                    self.accept(f);
                }
                WorkItem::Flush => self.flush(),
                WorkItem::Stop => break,
            }
        }
        self.flush();
    }

    fn site(&self, slot: usize) -> &DieSite {
        let f = self.slots[slot].frame.as_ref().expect("occupied slot");
        &self.sites[f.meta.die_index as usize]
    }

    fn accept(&mut self, frame: Frame) {
        let free = (0..3)
            .find(|&i| Some(i) != self.prev && Some(i) != self.cur)
            .expect("three slots, at most two held");
        let slot = &mut self.slots[free];
        slot.profiles.compute(frame.data());
        slot.frame = Some(frame);
        if self.single.is_some() {
            // One reference for every die: nothing to wait for.
            self.inspect(free, None, None);
            self.release(Some(free));
            return;
        }
        match self.cur {
            Some(cur) if self.site(cur).is_row_neighbour_of(self.site(free)) => {
                self.inspect(cur, self.prev, Some(free));
                self.release(self.prev);
                self.prev = Some(cur);
                self.cur = Some(free);
            }
            Some(_) => {
                self.flush();
                self.cur = Some(free);
            }
            None => self.cur = Some(free),
        }
    }

    fn flush(&mut self) {
        if let Some(cur) = self.cur {
            self.inspect(cur, self.prev, None);
        }
        let (prev, cur) = (self.prev.take(), self.cur.take());
        self.release(prev);
        self.release(cur);
    }

    fn release(&mut self, slot: Option<usize>) {
        if let Some(s) = slot {
            self.slots[s].frame = None; // the lease returns to the pool
        }
    }

    /// Inspects the die in `test` against whichever of `a`, `b` are its
    /// physical neighbours; the golden die fills in for the others.
    fn inspect(&mut self, test: usize, a: Option<usize>, b: Option<usize>) {
        let start = Instant::now();
        let t_site = *self.site(test);
        if let Some(f) = &self.faults {
            if f.worker_panics_at(t_site.index) {
                panic!(
                    "injected fault: detection worker panics at die {}",
                    t_site.index
                );
            }
        }
        let (mut left, mut right) = (None, None);
        for s in [a, b].into_iter().flatten() {
            let site = self.site(s);
            if site.is_row_neighbour_of(&t_site) {
                if site.col < t_site.col {
                    left = Some(s);
                } else {
                    right = Some(s);
                }
            }
        }
        let golden = Reference::golden(&self.golden, &self.golden_profiles);
        let reference = |s: Option<usize>| match s {
            Some(s) => Reference::die(
                self.slots[s].frame.as_ref().expect("occupied").data(),
                &self.slots[s].profiles,
            ),
            None => golden,
        };
        let t = Reference::die(
            self.slots[test].frame.as_ref().expect("occupied").data(),
            &self.slots[test].profiles,
        );
        self.result.clear(t_site.index);
        match &self.single {
            None => self.detector.inspect(
                t,
                reference(left),
                reference(right),
                Some(golden),
                &mut self.result,
            ),
            Some(SingleReference {
                pixels: Some(px),
                profiles: Some(p),
            }) => self
                .detector
                .inspect_against(t, Reference::die(px, p), &mut self.result),
            Some(_) => self.detector.inspect_against(t, golden, &mut self.result),
        }
        if let Some(d) = &self.display {
            d.offer(t.pixels, self.width, t_site.index, self.result.defects());
        }
        if let Some(tap) = &self.thumbnails {
            // Before the frame goes back to the pool.
            let h = t.pixels.len() / self.width;
            tap.capture(t.pixels, self.width, h, t_site.index, self.result.defects());
        }
        let ns = start.elapsed().as_nanos() as u64;
        self.result.inspect_ns = ns;
        self.telemetry.detect_time.record(ns);
        self.telemetry.dies_inspected.incr();
        self.telemetry
            .defects_found
            .add(self.result.count as u64 + self.result.dropped as u64);
        self.telemetry.pixels_inspected.add(t.pixels.len() as u64);
        self.telemetry
            .pixels_flagged
            .add(self.result.flagged_pixels as u64);
        if self.result.runs_overflowed || self.result.dropped > 0 {
            self.telemetry.dies_over_capacity.incr();
        }
        if self.result.alignment_untrusted {
            self.telemetry.dies_not_compared.incr();
        }
        // Results are never dropped in inspection; the results thread only
        // hands them on, so this does not block for long. It fails only if
        // the results thread is gone, whose death the pipeline's thread
        // health reports; count what could not be handed over.
        if self.results.send(self.result).is_err() {
            self.telemetry.results_lost.incr();
        }
    }
}
