//! How the ranks of a world split the work: `data` ranks split each batch,
//! `experts` ranks split the experts, `data × experts = world`. Rank `r` is
//! data rank `r / experts` and expert rank `r % experts`, so the expert ranks
//! of one data group are neighbours (on one node when the launcher fills nodes
//! in rank order, where the tile exchange is cheapest).

use std::ops::Range;

use tessera_scenarios::Scenario;
use tessera_scenarios::config::ParallelConfig;

use super::ParallelError;

/// The resolved sizes of the two parallel axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Ranks that split the batch.
    pub data: usize,
    /// Ranks that split the experts.
    pub experts: usize,
}

impl Layout {
    /// The single-process layout.
    pub const SINGLE: Self = Self {
        data: 1,
        experts: 1,
    };

    /// The layout `scenario.parallel` asks for on `world` ranks; an absent size
    /// takes what the world leaves (both absent: all data-parallel).
    ///
    /// Errors, before any work: sizes whose product is not the world, data
    /// ranks that do not divide the batch, more expert ranks than experts.
    pub fn resolve(scenario: &Scenario, world: usize) -> Result<Self, ParallelError> {
        let p = &scenario.parallel;
        let fail = |reason: String| layout_error(p, world, reason);
        let divide = |by: usize, what: &str| {
            if by == 0 || !world.is_multiple_of(by) {
                Err(fail(format!(
                    "{what} = {by} does not divide the world size"
                )))
            } else {
                Ok(world / by)
            }
        };
        let layout = match (p.data, p.experts) {
            (None, None) => Self {
                data: world,
                experts: 1,
            },
            (Some(data), None) => Self {
                data,
                experts: divide(data, "data")?,
            },
            (None, Some(experts)) => Self {
                data: divide(experts, "experts")?,
                experts,
            },
            (Some(data), Some(experts)) => Self { data, experts },
        };
        if layout.data * layout.experts != world {
            return Err(fail("data × experts must equal the world size".into()));
        }
        let batch = scenario.training.batch_size;
        if !batch.is_multiple_of(layout.data) {
            return Err(fail(format!(
                "{} data ranks do not divide training.batch_size = {batch}",
                layout.data
            )));
        }
        let count: usize = scenario.expert_split().iter().product();
        if layout.experts > count {
            return Err(fail(format!(
                "{} expert ranks exceed the {count} experts",
                layout.experts
            )));
        }
        Ok(layout)
    }

    /// The data rank of world rank `rank`.
    pub fn data_rank(&self, rank: usize) -> usize {
        rank / self.experts
    }

    /// The world ranks of `rank`'s expert group (the ranks that share one
    /// data rank's samples and split their experts).
    pub fn group(&self, rank: usize) -> Range<usize> {
        let start = self.data_rank(rank) * self.experts;
        start..start + self.experts
    }

    /// Whether `rank` is the first of its expert group: the one whose copy of
    /// the group's replicated results (fields, gradients, statistics) counts in
    /// sums over the data ranks.
    pub fn leads_group(&self, rank: usize) -> bool {
        rank.is_multiple_of(self.experts)
    }
}

fn layout_error(p: &ParallelConfig, world: usize, reason: String) -> ParallelError {
    let show = |v: Option<usize>| v.map_or_else(|| "(absent)".to_owned(), |v| v.to_string());
    ParallelError::Layout {
        world,
        data: show(p.data),
        experts: show(p.experts),
        reason,
    }
}
