//! Conversions between the generated protobuf types and tether's own, with validation of
//! everything that comes off the wire.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::proto;
use crate::core::fields::{MAX_CHECK_TIMEOUT, is_env_name, normalise_dir};
use crate::core::run::Finished;
use crate::core::runner_info::check_info;
use crate::core::thunk::is_full_commit;
use crate::core::{Command, EventContext, Outcome, OutputStream, RunEvent, RunnerInfo, Thunk};
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
        }),
        clone_token: spec.clone_token.clone().unwrap_or_default(),
        run_id: spec.run_id.clone(),
        event: Some(proto::EventContext {
            kind: spec.event.kind.clone(),
            repo: spec.event.repo.clone(),
        }),
        run_url,
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
        RunEvent::Finished(finished) => Event::Finished(finished_to_proto(finished)),
    };
    proto::RunEvent { event: Some(event) }
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
mod tests {
    use super::*;
    use prost::Message;

    fn spec() -> RunSpec {
        let config = crate::core::Config::parse(
            "[checks.t]\nrun = [\"make\", \"x\"]\nenv = { A = \"1\" }\ndir = \"sub\"\nimage = \"alpine\"\n\
             secrets = [\"S\"]\ntimeout = \"5m\"\n",
        )
        .unwrap();
        let thunk = Thunk::new(&config.checks["t"], &"a".repeat(40), "https://example.com/r.git");
        RunSpec {
            thunk,
            clone_token: Some("tok".into()),
            run_id: "42".into(),
            event: EventContext { kind: "push".into(), repo: "o/r".into() },
        }
    }

    #[test]
    fn run_requests_survive_the_wire() {
        let original = spec();
        let bytes = run_request(&original, String::new()).encode_to_vec();
        let back = run_spec(proto::RunRequest::decode(&bytes[..]).unwrap()).unwrap();
        assert_eq!(back.thunk, original.thunk);
        assert_eq!(back.thunk.id(), original.thunk.id());
        assert_eq!(
            (back.clone_token, back.run_id, back.event),
            (original.clone_token, original.run_id, original.event)
        );
    }

    #[test]
    fn bad_requests_say_which_field() {
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().commit = "abc".into();
        assert!(run_spec(request).unwrap_err().contains("thunk.commit"));
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().timeout_ms = 0;
        assert!(run_spec(request).unwrap_err().contains("timeout_ms"));
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().dir = "../x".into();
        assert!(run_spec(request).unwrap_err().contains("inside the checkout"));
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().command = None;
        assert!(run_spec(request).unwrap_err().contains("thunk.command"));
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().env.insert("A=B".into(), "x".into());
        assert!(run_spec(request).unwrap_err().contains("\"A=B\" is not a variable name"));
        let mut request = run_request(&spec(), String::new());
        request.thunk.as_mut().unwrap().secrets.push("X\nY".into());
        assert!(run_spec(request).unwrap_err().contains("is not a variable name"));
    }

    #[test]
    fn local_and_unknown_event_kinds_are_refused() {
        for kind in ["local", "LOCAL", "", "deployment_status", "push "] {
            let mut request = run_request(&spec(), String::new());
            request.event.as_mut().unwrap().kind = kind.into();
            let error = run_spec(request).unwrap_err();
            assert!(error.contains("is not an event a server sends"), "{kind}: {error}");
        }
        let mut request = run_request(&spec(), String::new());
        request.event = None;
        assert_eq!(run_spec(request).unwrap_err(), "the request has no event");
        for kind in SERVER_EVENT_KINDS {
            let mut request = run_request(&spec(), String::new());
            request.event.as_mut().unwrap().kind = kind.to_string();
            assert_eq!(run_spec(request).unwrap().event.kind, *kind);
        }
    }

    #[test]
    fn info_off_the_wire_is_checked_field_by_field() {
        let good = || {
            info_to_proto(RunnerInfo {
                name: "laptop".into(),
                os: "linux".into(),
                arch: "amd64".into(),
                labels: vec!["gpu".into()],
                capacity: 2,
                runs_in_flight: 0,
                version: "0.1.0".into(),
                protocol_version: 1,
            })
        };
        assert_eq!(info_from_proto(good()).unwrap().name, "laptop");
        let mut bad = good();
        bad.name = "-rf".into();
        assert!(info_from_proto(bad).unwrap_err().starts_with("Info: name:"));
        let mut bad = good();
        bad.labels = vec!["x".into(); 20_002];
        assert!(info_from_proto(bad).unwrap_err().starts_with("Info: labels: 20002 labels"));
        let mut bad = good();
        bad.protocol_version = 0;
        assert!(info_from_proto(bad).unwrap_err().contains("protocol_version 0"));
    }

    #[test]
    fn events_survive_the_wire() {
        let at = from_unix_ms(1_700_000_000_123);
        let events = [
            RunEvent::Started { checkout_started: at, started: at, commit: "c".into() },
            RunEvent::Output { stream: OutputStream::Stderr, data: "x\n".into(), at, seq: 7 },
            RunEvent::Finished(Finished {
                outcome: Outcome::Signalled(9),
                timed_out: true,
                duration: Duration::from_millis(1500),
                output_chunks: 8,
            }),
        ];
        for event in events {
            let bytes = event_to_proto(event.clone()).encode_to_vec();
            let back = event_from_proto(proto::RunEvent::decode(&bytes[..]).unwrap()).unwrap();
            assert_eq!(back, event);
        }
    }
}

#[cfg(test)]
mod recorded {
    use super::*;
    use prost::Message;

    /// A `RunRequest` as version 1 of the protocol encodes it, recorded from the first release.
    /// A runner must keep reading it the same way: fields are added, never renumbered.
    const RUN_REQUEST_V1: &str = "0a6f0a1968747470733a2f2f6578616d706c652e636f6d2f722e67697412\
        28616161616161616161616161616161616161616161616161616161616161616161616161616161612209\
        0a046d616b650a01782a060a014112013132037375623a06616c70696e6540e0a7124a0153520174120374\
        6f6b1a023432220b0a047075736812036f2f72";

    #[test]
    fn a_recorded_version_1_request_still_decodes() {
        let bytes = hex::decode(RUN_REQUEST_V1.replace(' ', "")).unwrap();
        let spec = run_spec(proto::RunRequest::decode(&bytes[..]).unwrap()).unwrap();
        assert_eq!(spec.thunk.clone_url, "https://example.com/r.git");
        assert_eq!(spec.thunk.commit, "a".repeat(40));
        assert_eq!(spec.thunk.command, Command::Argv(vec!["make".into(), "x".into()]));
        assert_eq!(spec.thunk.env.get("A").map(String::as_str), Some("1"));
        assert_eq!((spec.thunk.dir.as_str(), spec.thunk.image.as_deref()), ("sub", Some("alpine")));
        assert_eq!(spec.thunk.timeout, Duration::from_secs(300));
        assert_eq!(
            (spec.thunk.secrets, spec.thunk.check),
            (vec!["S".to_string()], "t".to_string())
        );
        assert_eq!((spec.clone_token.as_deref(), spec.run_id.as_str()), (Some("tok"), "42"));
        assert_eq!((spec.event.kind.as_str(), spec.event.repo.as_str()), ("push", "o/r"));
    }
}
