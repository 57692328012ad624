//! The words an execution's record is written in: how it ended, where it is, how it answers.
//! Each is a type, so no text a caller or a workflow writes can be taken for one; the names are
//! what logs, metrics, the history and `wf runs` show.

pub(crate) use crate::lang::ast::Mode;

/// How an execution ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A `respond` was reached.
    Responded,
    /// The end was reached without `respond`.
    Completed,
    /// `fail`, or a runtime error.
    Failed,
    /// Turned away before it ran (`401`, `404`, `429`, …).
    Rejected,
    /// A delivery already seen (`dedupe`): the first execution's answer again, nothing run.
    Duplicate,
    /// A CORS preflight, answered by the trigger's `cors` setting.
    Preflight,
    /// Ended before it ran on, by `wf runs cancel`.
    Cancelled,
    /// Ended without running: a newer request with its `debounce` key came.
    Superseded,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Responded,
        Outcome::Completed,
        Outcome::Failed,
        Outcome::Rejected,
        Outcome::Duplicate,
        Outcome::Preflight,
        Outcome::Cancelled,
        Outcome::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Responded => "responded",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Preflight => "preflight",
            Outcome::Cancelled => "cancelled",
            Outcome::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Where an execution is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Accepted, not yet taken by a worker (or taken again for a retry).
    Queued,
    /// A worker runs it.
    Running,
    /// Waiting, holding no worker and no memory: a row with a due time (a `sleep`, an `http`
    /// step's next attempt, a `debounce`) or a callback's token. `wf runs show` says for what.
    Waiting,
    /// Over: its outcome says how.
    Ended,
}

impl State {
    pub(crate) const ALL: [State; 4] = [State::Queued, State::Running, State::Waiting, State::Ended];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Waiting => "waiting",
            State::Ended => "ended",
        }
    }

    /// The word the stores' rows hold: `parked` for a waiting run (the rows of stores written
    /// before the state was called `waiting` hold it too, so none is rewritten).
    pub(crate) fn stored(self) -> &'static str {
        match self {
            State::Waiting => "parked",
            s => s.as_str(),
        }
    }

    /// A state by its name (`parked`, its earlier name, too).
    pub(crate) fn parse(s: &str) -> Option<State> {
        if s == "parked" {
            return Some(State::Waiting);
        }
        State::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Where a journaled step is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepState {
    /// Under way (or under way when its process stopped: it is done again).
    Started,
    /// Ended with a result.
    Finished,
    /// Ended without one.
    Failed,
    /// A step that parked its run: an `http` call until its next attempt, a `sleep` until its end.
    Waiting,
}

impl StepState {
    pub(crate) const ALL: [StepState; 4] =
        [StepState::Started, StepState::Finished, StepState::Failed, StepState::Waiting];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Finished => "finished",
            StepState::Failed => "failed",
            StepState::Waiting => "waiting",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<StepState> {
        StepState::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Sync, Mode::Async].into_iter().find(|m| m.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sync => "sync",
            Mode::Async => "async",
        }
    }
}

/// What `wf runs --status` selects: an outcome or a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Outcome(Outcome),
    State(State),
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Outcome(o) => o.as_str(),
            Status::State(s) => s.as_str(),
        }
    }

    /// The word the stores' rows hold for it (see [`State::stored`]).
    pub(crate) fn stored(self) -> &'static str {
        match self {
            Status::Outcome(o) => o.as_str(),
            Status::State(s) => s.stored(),
        }
    }

    /// The status named `s`, or an error naming every valid one.
    pub(crate) fn parse(s: &str) -> Result<Status, String> {
        if let Some(o) = Outcome::parse(s) {
            return Ok(Status::Outcome(o));
        }
        if let Some(st) = State::parse(s) {
            return Ok(Status::State(st));
        }
        let valid: Vec<&str> =
            State::ALL.iter().map(|s| s.as_str()).chain(Outcome::ALL.iter().map(|o| o.as_str())).collect();
        Err(format!("unknown status `{s}`; one of: {}", valid.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_itself() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(Status::parse(o.as_str()), Ok(Status::Outcome(o)));
        }
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(Status::parse(s.as_str()), Ok(Status::State(s)));
        }
        let err = Status::parse("bogus").err().unwrap_or_default();
        assert!(err.contains("bogus") && err.contains("queued") && err.contains("duplicate"), "{err}");
    }
}

macro_rules! shown_as_str {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
shown_as_str!(Outcome, State, Mode, StepState);
