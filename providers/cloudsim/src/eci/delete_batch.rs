//! `DeleteContainerGroups` (the older SDK's batch delete): the groups of
//! `ContainerGroupIds`, a JSON array of at most 20 ids, all or none: an unknown id fails the
//! call before anything is deleted.

use super::error::ApiError;
use super::face::Face;
use eci::wire::api::errors;
use eci::wire::params::{ParamError, Params};

const MAX_IDS: usize = 20;

impl Face {
    pub fn delete_many(&self, p: &Params) -> Result<(), ApiError> {
        let raw = p.required("ContainerGroupIds")?;
        let ids: Vec<String> = serde_json::from_str(raw).map_err(|_| {
            ParamError::invalid("ContainerGroupIds", "expected a JSON array of strings")
        })?;
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ParamError::invalid(
                "ContainerGroupIds",
                format!("1 to {MAX_IDS} ids per request"),
            )
            .into());
        }
        if let Some(unknown) = ids.iter().find(|id| !self.engine().exists(id)) {
            return Err(ApiError::new(
                errors::GROUP_NOT_FOUND,
                format!("The specified ContainerGroupId {unknown:?} does not exist."),
            ));
        }
        for id in &ids {
            // Gone meanwhile (another delete): that one is done already.
            let _ = self.engine().delete(id);
        }
        Ok(())
    }
}
