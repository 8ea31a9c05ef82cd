//! EventBridge Scheduler as the API's [`Schedules`] port: one schedule per published
//! schedule-trigger workflow, in one schedule group, whose target is the scheduler function
//! (`cm_cloud::schedule`) with the input
//! `{"org", "workflowId", "scheduledTime": "<aws.scheduler.scheduled-time>"}`.
//!
//! | port method | EventBridge Scheduler |
//! |---|---|
//! | `put` | `CreateSchedule`; `ConflictException` (it exists) → `UpdateSchedule` with the same fields |
//! | `delete` | `DeleteSchedule`; `ResourceNotFoundException` is success |
//!
//! A schedule is named `<org>.<workflow>` (the state machine's name), or, when that is longer
//! than Scheduler's 64 characters, its first 47 characters, `-` and 16 hex digits of its
//! SHA-256 — stable, so `put` and `delete` find it again.
//!
//! Schedules fire in their time zone with no flexible window, retry the target as the retry
//! policy says, and send events they could not deliver to the dead-letter queue, if one is
//! configured (the stack's).

use aws_sdk_scheduler::Client;
use aws_sdk_scheduler::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, ScheduleState,
    Target,
};
use cm_api::error::{ApiError, ApiResult};
use cm_api::schedules::Schedules;
use cm_nodes::BoxFuture;
use cm_nodes::trigger::schedule::Schedule;

/// What [`EventBridgeSchedules`] needs besides the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulesConfig {
    /// The schedule group (`concertmaster` in the stack).
    pub group: String,
    /// The scheduler function's ARN (every schedule's target).
    pub target_arn: String,
    /// The role Scheduler assumes to invoke the target.
    pub role_arn: String,
    /// A dead-letter queue for events Scheduler could not deliver, if any.
    pub dead_letter_arn: Option<String>,
}

/// The [`Schedules`] port over EventBridge Scheduler.
#[derive(Debug, Clone)]
pub struct EventBridgeSchedules {
    client: Client,
    config: SchedulesConfig,
}

/// Scheduler's limit on schedule names.
const MAX_NAME: usize = 64;

/// The schedule name of `org`'s workflow `workflow`.
pub fn schedule_name(org: &str, workflow: &str) -> String {
    let name = format!("{org}.{workflow}");
    if name.len() <= MAX_NAME {
        return name;
    }
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", &name[..MAX_NAME - 17])
}

fn failed<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: &SdkError<E, R>,
) -> ApiError {
    match e.code() {
        Some(code) => ApiError::Internal(format!(
            "EventBridge Scheduler {op} failed: {code}: {}",
            e.message().unwrap_or_default()
        )),
        None => ApiError::Internal(format!(
            "EventBridge Scheduler {op} failed: {}",
            DisplayErrorContext(e)
        )),
    }
}

impl EventBridgeSchedules {
    /// Schedules over `client`.
    pub fn new(client: Client, config: SchedulesConfig) -> EventBridgeSchedules {
        EventBridgeSchedules { client, config }
    }

    fn target(&self, org: &str, workflow: &str) -> ApiResult<Target> {
        let input = serde_json::json!({
            "org": org,
            "workflowId": workflow,
            "scheduledTime": "<aws.scheduler.scheduled-time>",
        });
        let mut t = Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .input(input.to_string())
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(5)
                    .maximum_event_age_in_seconds(3600)
                    .build(),
            );
        if let Some(dlq) = &self.config.dead_letter_arn {
            t = t.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        t.build()
            .map_err(|e| ApiError::Internal(format!("EventBridge Scheduler target: {e}")))
    }

    async fn put_inner(&self, org: &str, workflow: &str, schedule: &Schedule) -> ApiResult<()> {
        let name = schedule_name(org, workflow);
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| ApiError::Internal(format!("EventBridge Scheduler window: {e}")))?;
        let target = self.target(org, workflow)?;
        let description = format!("ConcertMaster: runs of workflow {workflow} ({org})");
        let created = self
            .client
            .create_schedule()
            .name(&name)
            .group_name(&self.config.group)
            .schedule_expression(schedule.expression())
            .schedule_expression_timezone(schedule.timezone())
            .flexible_time_window(window.clone())
            .target(target.clone())
            .state(ScheduleState::Enabled)
            .description(&description)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConflictException") => self
                .client
                .update_schedule()
                .name(&name)
                .group_name(&self.config.group)
                .schedule_expression(schedule.expression())
                .schedule_expression_timezone(schedule.timezone())
                .flexible_time_window(window)
                .target(target)
                .state(ScheduleState::Enabled)
                .description(description)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| failed("UpdateSchedule", &e)),
            Err(e) => Err(failed("CreateSchedule", &e)),
        }
    }

    async fn delete_inner(&self, org: &str, workflow: &str) -> ApiResult<()> {
        match self
            .client
            .delete_schedule()
            .name(schedule_name(org, workflow))
            .group_name(&self.config.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(failed("DeleteSchedule", &e)),
        }
    }
}

impl Schedules for EventBridgeSchedules {
    fn put<'a>(
        &'a self,
        org: &'a str,
        workflow: &'a str,
        schedule: &'a Schedule,
    ) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(self.put_inner(org, workflow, schedule))
    }

    fn delete<'a>(&'a self, org: &'a str, workflow: &'a str) -> BoxFuture<'a, ApiResult<()>> {
        Box::pin(self.delete_inner(org, workflow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_limit_and_stay_stable() {
        assert_eq!(schedule_name("acme", "nightly"), "acme.nightly");
        let long = "w".repeat(64);
        let a = schedule_name("acme", &long);
        assert_eq!(a.len(), MAX_NAME);
        assert_eq!(a, schedule_name("acme", &long));
        assert_ne!(a, schedule_name("acmf", &long));
        assert!(a.starts_with("acme.www"), "{a}");
    }
}
