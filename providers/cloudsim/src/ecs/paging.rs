//! Paging of list answers: `maxResults` (1 to the action's most) and an opaque `nextToken`
//! that carries the offset of the next page.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;

fn token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("page:{offset}"))
}

fn offset(token: &str) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    text.strip_prefix("page:")?.parse().ok()
}

/// One page of `items`, and the token of the next when there are more.
pub fn page<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max_results: Option<i32>,
    most: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => most,
        Some(n) if n >= 1 && n as usize <= most => n as usize,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "maxResults: {n} is not from 1 to {most}."
            )));
        }
    };
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => {
            offset(t).ok_or_else(|| ApiError::invalid("nextToken: the token is not valid."))?
        }
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let next = (start + page.len() < total).then(|| token(start + page.len()));
    Ok((page, next))
}
