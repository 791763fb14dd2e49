//! The image cache calls: create, describe (all pages, or one cache by id, name or tag),
//! update, delete.

use std::collections::HashSet;

use crate::client::EciClient;
use crate::error::EciError;
use crate::wire::api::{ImageCache as CloudCache, Tag, errors};
use crate::wire::request_image_cache::{
    CreateImageCache, DeleteImageCache, DescribeImageCaches, UpdateImageCache,
};

/// `DescribeImageCaches`' page size.
pub const PAGE_SIZE: u32 = 50;

/// Every cache the query finds, following `NextToken` (a token seen twice is an error, not a
/// loop).
pub async fn describe_all(
    client: &EciClient,
    mut query: DescribeImageCaches,
) -> Result<Vec<CloudCache>, EciError> {
    query.limit.get_or_insert(PAGE_SIZE);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let page = client.send(&query).await?;
        out.extend(page.image_caches);
        if page.next_token.is_empty() {
            return Ok(out);
        }
        if !seen.insert(page.next_token.clone()) {
            return Err(EciError::Decode {
                action: "DescribeImageCaches".into(),
                message: format!(
                    "NextToken {:.64} came back again after {} caches; the listing does not end",
                    page.next_token,
                    out.len()
                ),
            });
        }
        query.next_token = Some(page.next_token);
    }
}

/// The cache with this id; `None` when the cloud has none (answered as an empty list or as
/// `InvalidImageCache.NotFound`).
pub async fn by_id(client: &EciClient, id: &str) -> Result<Option<CloudCache>, EciError> {
    let query = DescribeImageCaches {
        image_cache_id: Some(id.to_string()),
        ..Default::default()
    };
    match describe_all(client, query).await {
        Ok(caches) => Ok(caches.into_iter().find(|c| c.image_cache_id == id)),
        Err(e) if e.code() == Some(errors::IMAGE_CACHE_NOT_FOUND.0) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The caches named so.
pub async fn by_name(client: &EciClient, name: &str) -> Result<Vec<CloudCache>, EciError> {
    let query = DescribeImageCaches {
        image_cache_name: Some(name.to_string()),
        ..Default::default()
    };
    Ok(describe_all(client, query)
        .await?
        .into_iter()
        .filter(|c| c.image_cache_name == name)
        .collect())
}

/// The caches carrying this tag.
pub async fn by_tag(client: &EciClient, tag: Tag) -> Result<Vec<CloudCache>, EciError> {
    let query = DescribeImageCaches {
        tags: vec![tag.clone()],
        ..Default::default()
    };
    Ok(describe_all(client, query)
        .await?
        .into_iter()
        .filter(|c| c.tags.contains(&tag))
        .collect())
}

/// The new cache's id.
pub async fn create(client: &EciClient, request: &CreateImageCache) -> Result<String, EciError> {
    Ok(client.send(request).await?.image_cache_id)
}

pub async fn update(client: &EciClient, request: &UpdateImageCache) -> Result<(), EciError> {
    client.send(request).await.map(|_| ())
}

/// Delete; a cache already gone is not an error.
pub async fn delete(client: &EciClient, id: &str) -> Result<(), EciError> {
    match client.send(&DeleteImageCache::new(id)).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(errors::IMAGE_CACHE_NOT_FOUND.0) || e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}
