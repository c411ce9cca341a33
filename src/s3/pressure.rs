//! What the servers say about load, counted across every request of the run: answers asking
//! to slow down (503, 429), connections that failed or timed out, and the latest
//! `Retry-After`. Every attempt counts, the SDK's own retries included, which a caller never
//! sees. The executor lowers its level on them (`exec::level`) and starts nothing new before
//! a `Retry-After` has passed. Also the quickest answer so far, from request sent to response
//! head: the round trip the executor starts its level from.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

static SLOW_DOWN_ANSWERS: AtomicU64 = AtomicU64::new(0);
static FAILED_CONNECTIONS: AtomicU64 = AtomicU64::new(0);
static PAUSE_UNTIL: Mutex<Option<Instant>> = Mutex::new(None);
/// Microseconds; `u64::MAX` until a first answer.
static QUICKEST_ANSWER_US: AtomicU64 = AtomicU64::new(u64::MAX);

/// The longest `Retry-After` honoured: a server asking for an hour is not waited for here
/// (the request is retried, or fails, as any other).
const LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// Answers asking to slow down so far, and failed or timed-out connections.
pub fn counts() -> (u64, u64) {
    (SLOW_DOWN_ANSWERS.load(Ordering::Acquire), FAILED_CONNECTIONS.load(Ordering::Acquire))
}

/// Until when a server asked (`Retry-After`) that nothing new start, if that is still ahead.
pub fn paused_until() -> Option<Instant> {
    let until = *PAUSE_UNTIL.lock().expect("pause lock");
    until.filter(|until| *until > Instant::now())
}

/// The quickest answer a server gave since `forget_quickest_answer`, from the request sent to
/// the response head: a round trip and the server's time. A request that opened its
/// connection waited a round trip more, which only the quickest of several leaves out.
pub fn quickest_answer() -> Option<Duration> {
    let micros = QUICKEST_ANSWER_US.load(Ordering::Acquire);
    (micros != u64::MAX).then(|| Duration::from_micros(micros))
}

/// Starts measuring the quickest answer afresh: a transfer starts its level from its own
/// servers' answers, not an earlier transfer's (transfers run one at a time).
pub fn forget_quickest_answer() {
    QUICKEST_ANSWER_US.store(u64::MAX, Ordering::Release);
}

/// When an attempt's request was handed to the connection.
#[derive(Debug, Clone, Copy)]
struct SentAt(Instant);

impl aws_smithy_types::config_bag::Storable for SentAt {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Counts each attempt's answer; installed on every S3 client.
#[derive(Debug)]
pub(super) struct Watch;

impl Intercept for Watch {
    fn name(&self) -> &'static str {
        "Pressure"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        config.interceptor_state().store_put(SentAt(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(SentAt(sent)) = config.load::<SentAt>() {
            let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
            QUICKEST_ANSWER_US.fetch_min(micros, Ordering::AcqRel);
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match context.response() {
            Some(response) => {
                let status = response.status().as_u16();
                if status == 503 || status == 429 {
                    SLOW_DOWN_ANSWERS.fetch_add(1, Ordering::AcqRel);
                    if let Some(wait) = response.headers().get("retry-after").and_then(retry_after) {
                        pause_for(wait);
                    }
                }
            }
            None => {
                if let Some(Err(error)) = context.output_or_error()
                    && (error.is_connector_error() || error.is_timeout_error())
                {
                    FAILED_CONNECTIONS.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
        Ok(())
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by S3 and is ignored).
fn retry_after(value: &str) -> Option<Duration> {
    let seconds: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(LONGEST_PAUSE))
}

fn pause_for(wait: Duration) {
    let until = Instant::now() + wait;
    let mut pause = PAUSE_UNTIL.lock().expect("pause lock");
    if pause.is_none_or(|current| current < until) {
        *pause = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(" 7200 "), Some(LONGEST_PAUSE));
        assert_eq!(retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
    }
}
