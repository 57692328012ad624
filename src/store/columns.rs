//! The typed words of a record (mode, state, outcome) as both databases' text columns hold them:
//! written with `as_str`, read back by name; a name no wf writes is an error, never a guess.

use super::{Mode, Outcome, State, StepState};

/// A state as the stores write it: `retry` is a failed run marked to run again, queued until a
/// process takes it.
fn state(s: &str) -> Option<State> {
    if s == "retry" {
        return Some(State::Queued);
    }
    State::parse(s)
}

macro_rules! text_column {
    ($($t:ty => $parse:expr, $what:literal);*) => {$(
        impl rusqlite::types::FromSql for $t {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                $parse(s).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(format!("unknown {} `{s}`", $what).into())
                })
            }
        }

        impl<'a> tokio_postgres::types::FromSql<'a> for $t {
            fn from_sql(
                ty: &tokio_postgres::types::Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                let s = <&str as tokio_postgres::types::FromSql>::from_sql(ty, raw)?;
                $parse(s).ok_or_else(|| format!("unknown {} `{s}`", $what).into())
            }

            fn accepts(ty: &tokio_postgres::types::Type) -> bool {
                <&str as tokio_postgres::types::FromSql>::accepts(ty)
            }
        }
    )*};
}

text_column!(
    Mode => Mode::parse, "mode";
    State => state, "state";
    Outcome => Outcome::parse, "outcome";
    StepState => StepState::parse, "step state"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_strangers_are_errors() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let read = |s: &str| conn.query_row("SELECT ?1", [s], |r| r.get::<_, Outcome>(0));
        assert_eq!(read("failed").ok(), Some(Outcome::Failed));
        assert!(read("parked until its next attempt is due").is_err());
        // A waiting run's rows hold `parked`, its earlier name.
        let state = conn.query_row("SELECT 'parked'", [], |r| r.get::<_, State>(0)).ok();
        assert_eq!(state, Some(State::Waiting));
        assert_eq!(State::Waiting.stored(), "parked");
        let marked = conn.query_row("SELECT 'retry'", [], |r| r.get::<_, State>(0)).ok();
        assert_eq!(marked, Some(State::Queued));
        let step = |s: &str| conn.query_row("SELECT ?1", [s], |r| r.get::<_, StepState>(0));
        assert_eq!(step("waiting").ok(), Some(StepState::Waiting));
        assert!(step("finished, said the caller").is_err());
    }
}
