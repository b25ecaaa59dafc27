//! Conversions between the generated protobuf types and tether's own, with validation of
//! everything that comes off the wire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::proto;
use crate::core::fields::{MAX_CHECK_TIMEOUT, is_env_name, normalise_dir};
use crate::core::run::Finished;
use crate::core::runner_info::check_info;
use crate::core::steps::{SECTION_TITLE_MAX_CHARS, SECTIONS_MAX};
use crate::core::thunk::is_full_commit;
use crate::core::{Command, EventContext, Outcome, OutputStream, RunEvent, RunnerInfo, Thunk};
use crate::core::{Step, StepKind, StepStatus};

/// Steps a run has besides its sections: checkout, image, run.
const BUILT_IN_STEPS_MAX: usize = 3;
use crate::exec::RunSpec;
use crate::exec::secrets::SERVER_EVENT_KINDS;

pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// The request for `spec`; `run_url` is the run's page, or empty.
pub fn run_request(spec: &RunSpec, run_url: String) -> proto::RunRequest {
    let thunk = &spec.thunk;
    let command = match &thunk.command {
        Command::Script(script) => proto::thunk::Command::Script(script.clone()),
        Command::Argv(args) => proto::thunk::Command::Argv(proto::Argv { args: args.clone() }),
    };
    proto::RunRequest {
        thunk: Some(proto::Thunk {
            clone_url: thunk.clone_url.clone(),
            commit: thunk.commit.clone(),
            command: Some(command),
            env: thunk.env.clone().into_iter().collect(),
            dir: thunk.dir.clone(),
            image: thunk.image.clone().unwrap_or_default(),
            timeout_ms: thunk.timeout.as_millis() as u64,
            secrets: thunk.secrets.clone(),
            check: thunk.check.clone(),
            tty: thunk.tty,
        }),
        clone_token: spec.clone_token.clone().unwrap_or_default(),
        run_id: spec.run_id.clone(),
        event: Some(proto::EventContext {
            kind: spec.event.kind.clone(),
            repo: spec.event.repo.clone(),
        }),
        run_url,
        send_steps: true,
    }
}

/// Validates a request off the wire; the error says which field is wrong.
pub fn run_spec(request: proto::RunRequest) -> Result<RunSpec, String> {
    let thunk = request.thunk.ok_or("the request has no thunk")?;
    if thunk.clone_url.is_empty() {
        return Err("thunk.clone_url is empty".into());
    }
    if !is_full_commit(&thunk.commit) {
        return Err("thunk.commit must be a full 40-character commit id".into());
    }
    let command = match thunk.command {
        Some(proto::thunk::Command::Script(script)) if !script.trim().is_empty() => {
            Command::Script(script)
        }
        Some(proto::thunk::Command::Argv(argv))
            if argv.args.first().is_some_and(|p| !p.is_empty()) =>
        {
            Command::Argv(argv.args)
        }
        _ => return Err("thunk.command must be a non-empty script or argv".into()),
    };
    let timeout = Duration::from_millis(thunk.timeout_ms);
    if timeout.is_zero() || timeout > MAX_CHECK_TIMEOUT {
        return Err("thunk.timeout_ms must be more than 0 and at most 7 days".into());
    }
    let dir = normalise_dir(if thunk.dir.is_empty() { "." } else { &thunk.dir })?;
    if let Some(name) = thunk.env.keys().chain(&thunk.secrets).find(|n| !is_env_name(n)) {
        return Err(format!("thunk: {name:?} is not a variable name"));
    }
    let event = request.event.ok_or("the request has no event")?;
    // The event decides which secrets a run gets: one the server does not send, `local` (which
    // gets them all) above all, never comes from the wire.
    if !SERVER_EVENT_KINDS.contains(&event.kind.as_str()) {
        return Err(format!(
            "event.kind {:?} is not an event a server sends ({}); local runs are made by `tether \
             run` only",
            event.kind.chars().take(64).collect::<String>(),
            SERVER_EVENT_KINDS.join(", ")
        ));
    }
    Ok(RunSpec {
        thunk: Thunk {
            check: thunk.check,
            clone_url: thunk.clone_url,
            commit: thunk.commit.to_ascii_lowercase(),
            command,
            env: thunk.env.into_iter().collect(),
            dir,
            image: Some(thunk.image).filter(|i| !i.is_empty()),
            timeout,
            secrets: thunk.secrets,
            tty: thunk.tty,
        },
        clone_token: Some(request.clone_token).filter(|t| !t.is_empty()),
        run_id: request.run_id,
        event: EventContext { kind: event.kind, repo: event.repo },
    })
}

pub fn event_to_proto(event: RunEvent) -> proto::RunEvent {
    use proto::run_event::Event;
    let event = match event {
        RunEvent::Started { checkout_started, started, commit } => Event::Started(proto::Started {
            checkout_started_unix_ms: unix_ms(checkout_started),
            started_unix_ms: unix_ms(started),
            commit,
        }),
        RunEvent::Output { stream, data, at, seq } => Event::Output(proto::Output {
            stream: stream_to_proto(stream) as i32,
            data: data.to_vec(),
            unix_ms: unix_ms(at),
            seq,
        }),
        RunEvent::Step(step) => Event::Step(step_to_proto(step)),
        RunEvent::Finished(finished) => Event::Finished(finished_to_proto(finished)),
    };
    proto::RunEvent { event: Some(event) }
}

fn step_to_proto(step: Step) -> proto::Step {
    let kind = match step.kind {
        StepKind::Checkout => proto::StepKind::Checkout,
        StepKind::Image => proto::StepKind::Image,
        StepKind::Run => proto::StepKind::Run,
        StepKind::Section => proto::StepKind::Section,
    };
    let status = match step.status {
        StepStatus::Running => proto::StepStatus::Running,
        StepStatus::Success => proto::StepStatus::Success,
        StepStatus::Failure => proto::StepStatus::Failure,
        StepStatus::Cancelled => proto::StepStatus::Cancelled,
        StepStatus::Skipped => proto::StepStatus::Skipped,
    };
    proto::Step {
        index: step.index,
        name: step.name,
        kind: kind as i32,
        status: status as i32,
        started_unix_ms: unix_ms(step.started),
        finished_unix_ms: step.finished.map_or(0, unix_ms),
        first_line: step.first_line,
        last_line: step.last_line,
    }
}

/// A step off the wire: known kind and status, a bounded name, lines in order.
fn step_from_proto(step: proto::Step) -> Result<Step, String> {
    let kind = match proto::StepKind::try_from(step.kind) {
        Ok(proto::StepKind::Checkout) => StepKind::Checkout,
        Ok(proto::StepKind::Image) => StepKind::Image,
        Ok(proto::StepKind::Run) => StepKind::Run,
        Ok(proto::StepKind::Section) => StepKind::Section,
        _ => return Err(format!("step {}: unknown kind {}", step.index, step.kind)),
    };
    let status = match proto::StepStatus::try_from(step.status) {
        Ok(proto::StepStatus::Running) => StepStatus::Running,
        Ok(proto::StepStatus::Success) => StepStatus::Success,
        Ok(proto::StepStatus::Failure) => StepStatus::Failure,
        Ok(proto::StepStatus::Cancelled) => StepStatus::Cancelled,
        Ok(proto::StepStatus::Skipped) => StepStatus::Skipped,
        _ => return Err(format!("step {}: unknown status {}", step.index, step.status)),
    };
    if step.index as usize > SECTIONS_MAX + BUILT_IN_STEPS_MAX {
        return Err(format!("step index {} is beyond any run's steps", step.index));
    }
    if step.name.chars().count() > SECTION_TITLE_MAX_CHARS
        || step.name.chars().any(char::is_control)
    {
        return Err(format!(
            "step {}: its name is too long or holds control characters",
            step.index
        ));
    }
    if step.first_line == 0 || step.last_line < step.first_line {
        return Err(format!(
            "step {}: lines {}..{} make no sense",
            step.index, step.first_line, step.last_line
        ));
    }
    let finished = (status != StepStatus::Running).then(|| from_unix_ms(step.finished_unix_ms));
    Ok(Step {
        index: step.index,
        name: step.name,
        kind,
        status,
        started: from_unix_ms(step.started_unix_ms),
        finished,
        first_line: step.first_line,
        last_line: step.last_line,
    })
}

fn finished_to_proto(finished: Finished) -> proto::Finished {
    use proto::finished::Outcome as P;
    let outcome = match finished.outcome {
        Outcome::Exited(code) => P::ExitCode(code),
        Outcome::Signalled(signal) => P::Signal(signal),
        Outcome::Error(message) => P::Error(message),
    };
    proto::Finished {
        outcome: Some(outcome),
        timed_out: finished.timed_out,
        duration_ms: finished.duration.as_millis() as u64,
        output_chunks: finished.output_chunks,
    }
}

/// An event off the wire, or why it makes no sense.
pub fn event_from_proto(event: proto::RunEvent) -> Result<RunEvent, String> {
    use proto::run_event::Event;
    Ok(match event.event.ok_or("a run event with no content")? {
        Event::Started(s) => RunEvent::Started {
            checkout_started: from_unix_ms(s.checkout_started_unix_ms),
            started: from_unix_ms(s.started_unix_ms),
            commit: s.commit,
        },
        Event::Output(o) => RunEvent::Output {
            stream: stream_from_proto(o.stream),
            data: o.data.into(),
            at: from_unix_ms(o.unix_ms),
            seq: o.seq,
        },
        Event::Step(step) => RunEvent::Step(step_from_proto(step)?),
        Event::Finished(f) => {
            use proto::finished::Outcome as P;
            let outcome = match f.outcome.ok_or("a finished event with no outcome")? {
                P::ExitCode(code) => Outcome::Exited(code),
                P::Signal(signal) => Outcome::Signalled(signal),
                P::Error(message) => Outcome::Error(message),
            };
            RunEvent::Finished(Finished {
                outcome,
                timed_out: f.timed_out,
                duration: Duration::from_millis(f.duration_ms),
                output_chunks: f.output_chunks,
            })
        }
    })
}

fn stream_to_proto(stream: OutputStream) -> proto::Stream {
    match stream {
        OutputStream::Stdout => proto::Stream::Stdout,
        OutputStream::Stderr => proto::Stream::Stderr,
        OutputStream::Runner => proto::Stream::Runner,
    }
}

fn stream_from_proto(stream: i32) -> OutputStream {
    match proto::Stream::try_from(stream) {
        Ok(proto::Stream::Stderr) => OutputStream::Stderr,
        Ok(proto::Stream::Runner) => OutputStream::Runner,
        // Unknown streams from a newer runner are shown as output rather than dropped.
        _ => OutputStream::Stdout,
    }
}

pub fn info_to_proto(info: RunnerInfo) -> proto::InfoResponse {
    proto::InfoResponse {
        name: info.name,
        os: info.os,
        arch: info.arch,
        labels: info.labels,
        capacity: info.capacity,
        runs_in_flight: info.runs_in_flight,
        version: info.version,
        protocol_version: info.protocol_version,
    }
}

/// A runner's `Info` off the wire, every field checked; the error names the field.
pub fn info_from_proto(info: proto::InfoResponse) -> Result<RunnerInfo, String> {
    if info.protocol_version != super::PROTOCOL_VERSION {
        return Err(format!(
            "Info: protocol_version {} is not {}, the version of tether.runner.v1",
            info.protocol_version,
            super::PROTOCOL_VERSION
        ));
    }
    let info = RunnerInfo {
        name: info.name,
        os: info.os,
        arch: info.arch,
        labels: info.labels,
        capacity: info.capacity,
        runs_in_flight: info.runs_in_flight,
        version: info.version,
        protocol_version: info.protocol_version,
    };
    check_info(&info).map_err(|e| format!("Info: {e}"))?;
    Ok(info)
}

#[cfg(test)]
mod tests;
