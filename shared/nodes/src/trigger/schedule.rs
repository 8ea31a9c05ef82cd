//! `trigger.schedule`: runs started on a schedule written in EventBridge Scheduler's
//! expression language, evaluated here for the embedded engine (the cloud hands the same
//! expression and time zone to EventBridge Scheduler).
//!
//! **Expressions** ([`Schedule::parse`]):
//!
//! - `rate(N unit)` — every N minutes, hours or days: `rate(1 minute)`, `rate(5 minutes)`,
//!   `rate(1 hour)`, `rate(12 hours)`, `rate(1 day)`, `rate(3 days)`. The unit is singular
//!   exactly when N is 1, as AWS requires. A rate is a fixed interval, not wall-clock time: the
//!   time zone does not apply, and fire times are `start + k·N units` from the schedule's
//!   start ([`Schedule::with_start`]; by default the Unix epoch, so `rate(5 minutes)` fires at
//!   :00, :05, :10, … and `rate(1 day)` at 00:00 UTC).
//! - `cron(minutes hours day-of-month month day-of-week year)` — six fields, EventBridge's
//!   dialect (not Unix cron): minutes 0–59, hours 0–23, day-of-month 1–31, month 1–12 or
//!   `JAN`–`DEC`, day-of-week **1–7 = `SUN`–`SAT`** (1 is Sunday), year 1970–2199. Every field
//!   takes `*`, values, ranges `a-b` (not wrapping around), lists `a,b` and steps `a/n`,
//!   `a-b/n`, `*/n`. Exactly one of day-of-month and day-of-week must be `?` (the other
//!   decides the day). Day-of-month also takes `L` (last day), `LW` (last weekday), `nW`
//!   (weekday nearest day n, within the month); day-of-week takes `L` (Saturday, the week's
//!   last day), `nL` (the month's last weekday n: `6L` = last Friday) and `n#k` (the k-th
//!   weekday n of the month, k 1–5: `2#1` = first Monday). Names are case-insensitive.
//!   Fire times are whole minutes. Evaluation uses the `croner` crate.
//! - `at(yyyy-mm-ddThh:mm:ss)` — once, at that local time in the time zone.
//!
//! **Time zones** (`timezone`, default `UTC`): `UTC`, any IANA name (`Europe/Berlin`,
//! `America/New_York`; the tz database is compiled in through `chrono-tz`), or a fixed offset
//! (`+02:00`, `-0530`, `+09`). Cron fields and `at` times are wall-clock times in that zone.
//! Around daylight-saving changes (croner's rules, which match Vixie cron): a fixed time
//! (single minute and hour) that falls in a skipped hour fires at the first valid minute after
//! the gap, once; in a repeated hour it fires once, at the first occurrence; interval
//! expressions (`*`, steps, ranges in minutes or hours) skip the gap and fire in both passes of
//! a repeated hour. An `at` time that does not exist moves forward to the first minute that
//! does; one that exists twice means the first.
//!
//! **Run input** of a tick ([`ScheduleTrigger::run_input`]):
//! `{"scheduledTime": "2026-11-25T10:00:00.000Z", "input": <config.input or null>}`. In the
//! cloud the same shape is the EventBridge Scheduler target input, with `scheduledTime` from
//! `<aws.scheduler.scheduled-time>`.

use crate::NodeError;
use chrono::{FixedOffset, NaiveDateTime, TimeZone, Timelike as _};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt;

/// A parsed time zone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Zone {
    Utc,
    Fixed(FixedOffset),
    Iana(chrono_tz::Tz),
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Iana(tz) => f.write_str(tz.name()),
        }
    }
}

/// Which kind of expression a schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleKind {
    /// `rate(...)`: a fixed interval.
    Rate,
    /// `cron(...)`: wall-clock fields.
    Cron,
    /// `at(...)`: once.
    At,
}

#[derive(Debug, Clone)]
enum Kind {
    Rate { period_ms: i64, start_ms: i64 },
    Cron(Box<Cron>),
    At { at_ms: i64 },
}

/// A parsed schedule expression with its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    timezone: String,
    zone: Zone,
    kind: Kind,
}

/// The first year EventBridge cron expressions accept.
pub const MIN_YEAR: u32 = 1970;
/// The last year EventBridge cron expressions accept.
pub const MAX_YEAR: u32 = 2199;

impl Schedule {
    /// Parses `expression` (`cron(...)`, `rate(...)`, `at(...)`; see the [module docs](self))
    /// in `timezone`. Errors are `ConcertMaster.InvalidConfig` naming the config field
    /// (`config.expression`, `config.timezone`), the cron field and the problem.
    pub fn parse(expression: &str, timezone: &str) -> Result<Schedule, NodeError> {
        let zone = parse_timezone(timezone)?;
        let expr = expression.trim();
        let bad = |problem: String| {
            NodeError::InvalidConfig(format!("config.expression `{expr}`: {problem}"))
        };
        let kind = if let Some(inner) = call(expr, "rate") {
            parse_rate(inner).map_err(bad)?
        } else if let Some(inner) = call(expr, "cron") {
            Kind::Cron(Box::new(parse_cron(inner).map_err(bad)?))
        } else if let Some(inner) = call(expr, "at") {
            Kind::At {
                at_ms: parse_at(inner, zone).map_err(bad)?,
            }
        } else {
            return Err(bad(
                "must be `cron(minutes hours day-of-month month day-of-week year)`, \
                 `rate(N minutes|hours|days)` or `at(yyyy-mm-ddThh:mm:ss)`"
                    .into(),
            ));
        };
        Ok(Schedule {
            expression: expr.to_owned(),
            timezone: timezone.trim().to_owned(),
            zone,
            kind,
        })
    }

    /// Anchors a `rate(...)` schedule: it fires at `start_ms + k·period` (k ≥ 0). EventBridge
    /// Scheduler starts a rate when the schedule is created, so pass the time the workflow
    /// version was published to match it. No effect on `cron` and `at`.
    pub fn with_start(mut self, start_ms: i64) -> Schedule {
        if let Kind::Rate { start_ms: s, .. } = &mut self.kind {
            *s = start_ms;
        }
        self
    }

    /// The expression, as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone, as given (trimmed).
    pub fn timezone(&self) -> &str {
        &self.timezone
    }

    /// Which kind of expression this is.
    pub fn kind(&self) -> ScheduleKind {
        match self.kind {
            Kind::Rate { .. } => ScheduleKind::Rate,
            Kind::Cron(_) => ScheduleKind::Cron,
            Kind::At { .. } => ScheduleKind::At,
        }
    }

    /// The first fire time strictly after `ms` (ms since the epoch), or `None` when the
    /// schedule never fires again (an `at` in the past, a cron whose years are over).
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Rate {
                period_ms,
                start_ms,
            } => {
                if ms < *start_ms {
                    return Some(*start_ms);
                }
                let k = (ms - start_ms) / period_ms + 1;
                k.checked_mul(*period_ms)?.checked_add(*start_ms)
            }
            Kind::At { at_ms } => (*at_ms > ms).then_some(*at_ms),
            Kind::Cron(cron) => match self.zone {
                Zone::Utc => cron_next(cron, &chrono::Utc, ms),
                Zone::Fixed(o) => cron_next(cron, &o, ms),
                Zone::Iana(tz) => cron_next(cron, &tz, ms),
            },
        }
    }

    /// Up to `n` fire times strictly after `from`, in order.
    pub fn upcoming(&self, from: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n.min(1024));
        let mut at = from;
        while out.len() < n {
            match self.next_after(at) {
                Some(t) => {
                    out.push(t);
                    at = t;
                }
                None => break,
            }
        }
        out
    }
}

/// `name(inner)` → `inner`.
fn call<'a>(expr: &'a str, name: &str) -> Option<&'a str> {
    expr.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn cron_next<Z: TimeZone>(cron: &Cron, zone: &Z, ms: i64) -> Option<i64> {
    let start = zone.timestamp_millis_opt(ms).single()?;
    cron.find_next_occurrence(&start, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Parses the `timezone` config field.
fn parse_timezone(tz: &str) -> Result<Zone, NodeError> {
    let tz = tz.trim();
    if tz == "UTC" || tz == "Z" {
        return Ok(Zone::Utc);
    }
    if let Some(offset) = parse_offset(tz) {
        return offset.map(Zone::Fixed).ok_or_else(|| {
            NodeError::InvalidConfig(format!(
                "config.timezone `{tz}`: the offset must be between -18:00 and +18:00 with minutes 00-59"
            ))
        });
    }
    tz.parse::<chrono_tz::Tz>().map(Zone::Iana).map_err(|_| {
        NodeError::InvalidConfig(format!(
            "config.timezone `{tz}`: not a time zone; use `UTC`, an IANA name such as \
             `Europe/Berlin` (case matters), or a fixed offset such as `+02:00`"
        ))
    })
}

/// `±HH`, `±HHMM`, `±HH:MM` → `Some(offset)` (`Some(None)` when out of range); `None` when the
/// text is not offset-shaped.
fn parse_offset(s: &str) -> Option<Option<FixedOffset>> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let b = rest.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = rest.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (hours, minutes) = match b.len() {
        2 => (digits(0..2)?, 0),
        4 => (digits(0..2)?, digits(2..4)?),
        5 if b[2] == b':' => (digits(0..2)?, digits(3..5)?),
        _ => return None,
    };
    if minutes > 59 || hours * 60 + minutes > 18 * 60 {
        return Some(None);
    }
    Some(FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)))
}

fn parse_rate(inner: &str) -> Result<Kind, String> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    let [n, unit] = parts.as_slice() else {
        return Err("a rate is `rate(N unit)` with unit minute(s), hour(s) or day(s)".into());
    };
    let value: i64 = match n.parse::<u32>() {
        Ok(v) if v > 0 && !n.starts_with('0') => i64::from(v),
        _ => {
            return Err(format!(
                "the rate's value `{n}` must be a positive whole number"
            ));
        }
    };
    let (singular, unit_ms) = match *unit {
        "minute" => (true, 60_000),
        "minutes" => (false, 60_000),
        "hour" => (true, 3_600_000),
        "hours" => (false, 3_600_000),
        "day" => (true, 86_400_000),
        "days" => (false, 86_400_000),
        other => {
            return Err(format!(
                "the rate's unit `{other}` must be minute(s), hour(s) or day(s)"
            ));
        }
    };
    if singular != (value == 1) {
        let fixed = if value == 1 {
            unit.trim_end_matches('s').to_owned()
        } else {
            format!("{unit}s")
        };
        return Err(format!(
            "the unit must be singular for 1 and plural otherwise: write `rate({value} {fixed})`"
        ));
    }
    Ok(Kind::Rate {
        period_ms: value * unit_ms,
        start_ms: 0,
    })
}

fn parse_at(inner: &str, zone: Zone) -> Result<i64, String> {
    let shaped = inner.len() == 19
        && inner.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!(
            "`{inner}` must be a local date and time `yyyy-mm-ddThh:mm:ss` (no zone: the time \
             zone comes from config.timezone)"
        ));
    }
    let naive = NaiveDateTime::parse_from_str(inner, "%Y-%m-%dT%H:%M:%S")
        .map_err(|e| format!("`{inner}` is not a real date and time: {e}"))?;
    let ms = match zone {
        Zone::Utc => local_to_ms(&chrono::Utc, naive),
        Zone::Fixed(o) => local_to_ms(&o, naive),
        Zone::Iana(tz) => local_to_ms(&tz, naive),
    };
    ms.ok_or_else(|| format!("`{inner}` does not exist in the time zone"))
}

/// The instant of a local time: the earlier one if it is ambiguous, the first minute after a
/// gap if it does not exist.
fn local_to_ms<Z: TimeZone>(zone: &Z, naive: NaiveDateTime) -> Option<i64> {
    let mut t = naive;
    for _ in 0..=24 * 60 {
        if let Some(dt) = zone.from_local_datetime(&t).earliest() {
            return Some(dt.timestamp_millis());
        }
        t = t.checked_add_signed(chrono::TimeDelta::minutes(1))?;
        t = t.with_second(0)?;
    }
    None
}

/// One field of an EventBridge cron expression.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 6] = [
    Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    Field {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: &DAYS,
    },
    Field {
        name: "year",
        min: MIN_YEAR,
        max: MAX_YEAR,
        names: &[],
    },
];

const DOM: usize = 2;
const DOW: usize = 4;
const YEAR: usize = 5;

/// Parses the inside of `cron(...)` and hands croner the equivalent pattern
/// (`0 <min> <hour> <dom> <month> <dow 0-6> <years>`).
fn parse_cron(inner: &str) -> Result<Cron, String> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    if parts.len() != 6 {
        return Err(format!(
            "a cron expression has 6 fields (minutes hours day-of-month month day-of-week \
             year), found {}",
            parts.len()
        ));
    }
    match (parts[DOM] == "?", parts[DOW] == "?") {
        (true, false) | (false, true) => {}
        (false, false) => {
            return Err(format!(
                "one of day-of-month (field 3, `{}`) and day-of-week (field 5, `{}`) must be \
                 `?`: EventBridge does not combine them (e.g. `cron(0 12 ? * MON-FRI *)` or \
                 `cron(0 12 1 * ? *)`)",
                parts[DOM], parts[DOW]
            ));
        }
        (true, true) => {
            return Err(
                "day-of-month (field 3) and day-of-week (field 5) cannot both be `?`: one of \
                 them must say which days (use `*` for every day)"
                    .into(),
            );
        }
    }
    let mut out = vec!["0".to_owned()];
    for (i, (field, text)) in FIELDS.iter().zip(&parts).enumerate() {
        let translated = translate_field(i, field, text)
            .map_err(|problem| format!("{} (field {}) `{text}`: {problem}", field.name, i + 1))?;
        out.push(translated);
    }
    let pattern = out.join(" ");
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .build()
        .parse(&pattern)
        .map_err(|e| format!("cannot be evaluated: {e}"))
}

fn translate_field(i: usize, f: &Field, text: &str) -> Result<String, String> {
    let day_field = i == DOM || i == DOW;
    if text == "?" {
        if !day_field {
            return Err("`?` is only allowed in day-of-month and day-of-week".into());
        }
        return Ok("*".into());
    }
    if text == "*" {
        return Ok(if i == YEAR {
            format!("{MIN_YEAR}-{MAX_YEAR}")
        } else {
            "*".into()
        });
    }
    let mut items = Vec::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err("a list has an empty item".into());
        }
        if item == "?" {
            return Err("`?` must be the whole field".into());
        }
        if item == "*" {
            return Err("`*` must be the whole field (or `*/n`)".into());
        }
        if !day_field && item.contains(['?', 'L', 'W', '#']) && f.names.is_empty() {
            let c = item
                .chars()
                .find(|c| matches!(c, '?' | 'L' | 'W' | '#'))
                .unwrap_or('?');
            return Err(format!(
                "`{c}` is only allowed in day-of-month and day-of-week"
            ));
        }
        items.push(translate_item(i, f, item)?);
    }
    Ok(items.join(","))
}

/// Shifts a day-of-week from EventBridge's 1–7 (SUN = 1) to croner's 0–6 (SUN = 0).
fn shift(i: usize, v: u32) -> u32 {
    if i == DOW { v - 1 } else { v }
}

/// `s` without a last character `c` (either case).
fn strip_suffix_ci(s: &str, c: char) -> Option<&str> {
    s.strip_suffix(c.to_ascii_uppercase())
        .or_else(|| s.strip_suffix(c.to_ascii_lowercase()))
}

fn translate_item(i: usize, f: &Field, item: &str) -> Result<String, String> {
    if i == DOM {
        if item.eq_ignore_ascii_case("L") || item.eq_ignore_ascii_case("LW") {
            return Ok(item.to_ascii_uppercase());
        }
        if item.len() >= 2 && item[..2].eq_ignore_ascii_case("L-") {
            return Err("offsets from the last day (`L-n`) are not supported".into());
        }
        if let Some(day) = strip_suffix_ci(item, 'W') {
            let d = value(f, day)?;
            return Ok(format!("{d}W"));
        }
        if item.contains(['L', 'l', 'W', 'w', '#']) {
            return Err(format!(
                "`{item}` is not a day-of-month: use a number 1-31, `L`, `LW` or `nW`"
            ));
        }
    }
    if i == DOW {
        if item.eq_ignore_ascii_case("L") {
            // The week's last day: Saturday.
            return Ok("6".into());
        }
        if let Some((day, nth)) = item.split_once('#') {
            let d = value(f, day)?;
            let k: u32 = nth
                .parse()
                .ok()
                .filter(|k| (1..=5).contains(k))
                .ok_or_else(|| {
                    format!("`#{nth}` must be `#1` to `#5` (which week of the month)")
                })?;
            return Ok(format!("{}#{k}", shift(i, d)));
        }
        if let Some(day) = strip_suffix_ci(item, 'L') {
            let d = value(f, day)?;
            return Ok(format!("{}L", shift(i, d)));
        }
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => {
            let span = f.max - f.min + 1;
            let s: u32 = step
                .parse()
                .ok()
                .filter(|s| (1..=span).contains(s))
                .ok_or_else(|| format!("the step `/{step}` must be a whole number 1-{span}"))?;
            (base, Some(s))
        }
        None => (item, None),
    };
    let (lo, hi) = if base == "*" {
        if step.is_none() {
            return Err("`*` must be the whole field (or `*/n`)".into());
        }
        (f.min, f.max)
    } else if let Some((a, b)) = base.split_once('-') {
        let (a, b) = (value(f, a)?, value(f, b)?);
        if a > b {
            return Err(format!(
                "the range `{base}` runs backwards (ranges do not wrap around; use a list)"
            ));
        }
        (a, b)
    } else {
        let v = value(f, base)?;
        match step {
            // `a/n`: from a to the field's end.
            Some(_) => (v, f.max),
            None => return Ok(shift(i, v).to_string()),
        }
    };
    let range = format!("{}-{}", shift(i, lo), shift(i, hi));
    Ok(match step {
        Some(s) => format!("{range}/{s}"),
        None => range,
    })
}

/// A number or a name of field `f`, checked against its range.
fn value(f: &Field, s: &str) -> Result<u32, String> {
    let range = if f.names.is_empty() {
        format!("{}-{}", f.min, f.max)
    } else {
        format!(
            "{}-{} or {}-{}",
            f.min,
            f.max,
            f.names.first().copied().unwrap_or_default(),
            f.names.last().copied().unwrap_or_default()
        )
    };
    if s.is_empty() {
        return Err(format!("a value is missing (expected {range})"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let v: u32 = s
            .parse()
            .map_err(|_| format!("`{s}` is out of range {range}"))?;
        if v < f.min || v > f.max {
            return Err(format!("`{s}` is out of range {range}"));
        }
        return Ok(v);
    }
    let upper = s.to_ascii_uppercase();
    match f.names.iter().position(|n| *n == upper) {
        Some(p) => Ok(f.min + u32::try_from(p).unwrap_or(0)),
        None if f.names.is_empty() => Err(format!("`{s}` is not a number (expected {range})")),
        None => Err(format!("`{s}` is not a number or name (expected {range})")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    expression: String,
    #[serde(default = "utc")]
    timezone: String,
    #[serde(default)]
    input: Value,
}

fn utc() -> String {
    "UTC".into()
}

/// A `trigger.schedule` config, parsed.
#[derive(Debug, Clone)]
pub struct ScheduleTrigger {
    /// The schedule (expression and time zone).
    pub schedule: Schedule,
    /// `config.input`: the input of each run (`null` when absent).
    pub input: Value,
}

impl ScheduleTrigger {
    /// Parses a `trigger.schedule` config (`ConcertMaster.InvalidConfig` naming the field and
    /// the problem).
    pub fn from_config(config: &Value) -> Result<ScheduleTrigger, NodeError> {
        let cfg: Config = super::trigger_config(config)?;
        let schedule = Schedule::parse(&cfg.expression, &cfg.timezone)?;
        Ok(ScheduleTrigger {
            schedule,
            input: cfg.input,
        })
    }

    /// The run input of the tick scheduled for `scheduled_ms`:
    /// `{"scheduledTime": <RFC 3339 UTC>, "input": <config.input>}`.
    pub fn run_input(&self, scheduled_ms: i64) -> Value {
        json!({
            "scheduledTime": super::rfc3339_ms(scheduled_ms),
            "input": self.input,
        })
    }
}
