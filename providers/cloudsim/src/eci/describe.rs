//! The ECI face's listings: filters (ids, tags, name, status, placement, recent change) and
//! pages in creation order, with the page's last position as the NextToken.

use jiff::Timestamp;

use super::error::ApiError;
use super::face::Face;
use super::placement::PlacementFilter;
use super::record::record;
use super::render;
use super::view::{DescribeGroupsAnswer, DescribeStatusAnswer};
use eci::wire::api::errors;
use eci::wire::request::DescribeContainerGroups;

/// DescribeContainerGroupStatus answers at most this many groups per page.
const STATUS_PAGE: u32 = 200;

impl Face {
    fn select(
        &self,
        q: &DescribeContainerGroups,
        placement: &PlacementFilter,
        since: Option<Timestamp>,
    ) -> Vec<u64> {
        let region = &self.config().region_id;
        let state = self.engine().state();
        state
            .groups()
            .filter(|g| {
                q.container_group_ids.is_empty()
                    || q.container_group_ids.iter().any(|id| id == g.id())
            })
            .filter(|g| {
                q.tags.iter().all(|t| {
                    record(g)
                        .request
                        .tags
                        .iter()
                        .any(|gt| gt.key == t.key && gt.value == t.value)
                })
            })
            .filter(|g| {
                q.container_group_name
                    .as_ref()
                    .is_none_or(|n| *n == g.spec.name)
            })
            .filter(|g| {
                q.status
                    .as_ref()
                    .is_none_or(|s| s == render::status_name(g.status))
            })
            .filter(|g| placement.matches(g, region))
            .filter(|g| since.is_none_or(|s| g.updated >= s))
            .map(|g| g.seq)
            .collect()
    }

    /// One page of the matching groups: (page, next token, total).
    pub(super) fn page(
        &self,
        q: &DescribeContainerGroups,
        placement: &PlacementFilter,
        since: Option<Timestamp>,
        max: u32,
    ) -> Result<(Vec<u64>, String, u64), ApiError> {
        let matching = self.select(q, placement, since);
        let limit = q.limit.unwrap_or(max).clamp(1, max.max(1)) as usize;
        let (range, next) = page_of(&matching, |s| *s, q.next_token.as_deref(), limit)?;
        Ok((matching[range].to_vec(), next, matching.len() as u64))
    }

    pub fn describe(
        &self,
        q: &DescribeContainerGroups,
        placement: &PlacementFilter,
    ) -> Result<DescribeGroupsAnswer, ApiError> {
        let (seqs, next_token, total) =
            self.page(q, placement, None, self.config().max_page_size)?;
        let state = self.engine().state();
        let region = &self.config().region_id;
        Ok(DescribeGroupsAnswer {
            request_id: String::new(),
            next_token,
            total_count: total,
            container_groups: seqs
                .iter()
                .filter_map(|s| state.by_seq(*s))
                .map(|g| render::group(g, region, placement.with_event))
                .collect(),
        })
    }

    pub fn describe_status(
        &self,
        q: &DescribeContainerGroups,
        placement: &PlacementFilter,
        since_second: Option<u64>,
    ) -> Result<DescribeStatusAnswer, ApiError> {
        let since = since_second.and_then(|s| {
            Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(
                    i64::try_from(s).unwrap_or(i64::MAX),
                ))
                .ok()
        });
        let (seqs, next_token, total) = self.page(q, placement, since, STATUS_PAGE)?;
        let state = self.engine().state();
        Ok(DescribeStatusAnswer {
            request_id: String::new(),
            next_token,
            total_count: total,
            data: seqs
                .iter()
                .filter_map(|s| state.by_seq(*s))
                .map(render::status)
                .collect(),
        })
    }
}

/// One page of `items` (ascending by `seq`): the range after `NextToken` (the first sequence
/// number not yet handed out), up to `limit`, and the token of the page after it (empty at
/// the end).
pub(super) fn page_of<T>(
    items: &[T],
    seq: impl Fn(&T) -> u64,
    next_token: Option<&str>,
    limit: usize,
) -> Result<(std::ops::Range<usize>, String), ApiError> {
    let start = match next_token {
        None => 0,
        Some(token) => {
            let after: u64 = token.parse().map_err(|_| {
                ApiError::new(
                    errors::INVALID_PARAMETER,
                    "The specified NextToken is not valid.",
                )
            })?;
            items.partition_point(|item| seq(item) < after)
        }
    };
    let end = (start + limit).min(items.len());
    let next = items
        .get(end)
        .map(|item| seq(item).to_string())
        .unwrap_or_default();
    Ok((start..end, next))
}
