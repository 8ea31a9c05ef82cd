//! Where published schedule triggers fire in the cloud: the [`Schedules`] port. Publishing a
//! `trigger.schedule` workflow puts its schedule; publishing another trigger over it, or
//! deleting the workflow, deletes it. The embedded deployment has none (its scheduler,
//! [`crate::triggers::Scheduler`], reads the published routes itself); in the cloud it is
//! EventBridge Scheduler (`cm_runtime_sfn::schedules::EventBridgeSchedules`), whose target is
//! the scheduler function.

use crate::error::ApiResult;
use cm_nodes::BoxFuture;
use cm_nodes::trigger::schedule::Schedule;

/// Keeps one schedule per published schedule-trigger workflow.
pub trait Schedules: Send + Sync + 'static {
    /// Creates or replaces the schedule of `org`'s workflow `workflow`.
    fn put<'a>(
        &'a self,
        org: &'a str,
        workflow: &'a str,
        schedule: &'a Schedule,
    ) -> BoxFuture<'a, ApiResult<()>>;

    /// Deletes it (no schedule is not an error).
    fn delete<'a>(&'a self, org: &'a str, workflow: &'a str) -> BoxFuture<'a, ApiResult<()>>;
}

#[cfg(any(test, feature = "test-util"))]
pub mod test_util {
    //! An in-memory [`Schedules`] for tests.
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// The schedules put, by `(org, workflow)`: `(expression, timezone)`.
    #[derive(Debug, Default)]
    pub struct MemorySchedules(pub Mutex<BTreeMap<(String, String), (String, String)>>);

    impl Schedules for MemorySchedules {
        fn put<'a>(
            &'a self,
            org: &'a str,
            workflow: &'a str,
            schedule: &'a Schedule,
        ) -> BoxFuture<'a, ApiResult<()>> {
            Box::pin(async move {
                if let Ok(mut m) = self.0.lock() {
                    m.insert(
                        (org.to_owned(), workflow.to_owned()),
                        (
                            schedule.expression().to_owned(),
                            schedule.timezone().to_owned(),
                        ),
                    );
                }
                Ok(())
            })
        }

        fn delete<'a>(&'a self, org: &'a str, workflow: &'a str) -> BoxFuture<'a, ApiResult<()>> {
            Box::pin(async move {
                if let Ok(mut m) = self.0.lock() {
                    m.remove(&(org.to_owned(), workflow.to_owned()));
                }
                Ok(())
            })
        }
    }
}
