//! What the state machines of orders, Zoom links and jobs share. Each machine says, for every
//! (state, event) pair, whether the event is allowed and which state follows; the store applies the
//! resulting [`Step`] as a compare-and-set (`... SET state = <to> WHERE state = <from>`, rows counted),
//! so a row another transaction moved meanwhile is left alone and the caller learns it.

use std::fmt;

/// One allowed change of state: the state the row must still be in, and the one it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Step<S> {
    pub from: S,
    pub to: S,
}

/// A state machine over `Self` (the states) driven by `Self::Event`.
pub trait StateMachine: Copy + Eq + fmt::Debug + 'static {
    type Event: Copy + Eq + fmt::Debug;

    /// Every state, for tables and for [`StateMachine::steps`].
    const STATES: &'static [Self];

    /// What a row of this kind is called in refusals ("order", "job").
    const WHAT: &'static str;

    /// The state `event` leads to from `self`, or `None` when the event is not allowed there.
    fn next(self, event: Self::Event) -> Option<Self>;

    fn name(self) -> &'static str;

    /// The step `event` takes from `self`, or why it cannot.
    fn on(self, event: Self::Event) -> Result<Step<Self>, IllegalMove> {
        match self.next(event) {
            Some(to) => Ok(Step { from: self, to }),
            None => Err(IllegalMove {
                what: Self::WHAT,
                from: self.name(),
                event: format!("{event:?}"),
            }),
        }
    }

    /// Every step `event` may take, one per state it is allowed from: a store that changes rows in
    /// several states at once applies each as its own compare-and-set.
    fn steps(event: Self::Event) -> Vec<Step<Self>> {
        Self::STATES.iter().filter_map(|s| s.on(event).ok()).collect()
    }
}

/// An event the machine does not allow in the state the row is in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} is {from}; {event} is not allowed")]
pub struct IllegalMove {
    pub what: &'static str,
    pub from: &'static str,
    pub event: String,
}

/// Checks a machine against its whole table: every (state, event) pair in `legal` leads where the
/// table says, every other pair is refused, `steps` lists the table's rows per event, and only
/// the `finals` have no way out.
#[cfg(test)]
pub(crate) fn assert_table<S: StateMachine>(
    events: &[S::Event],
    legal: &[(S, S::Event, S)],
    finals: &[S],
) {
    let mut checked = 0;
    for &event in events {
        for &from in S::STATES {
            let expected = legal.iter().find(|(f, e, _)| *f == from && *e == event).map(|l| l.2);
            match (from.on(event), expected) {
                (Ok(step), Some(to)) => {
                    assert_eq!(step, Step { from, to }, "{event:?} from {from:?}")
                }
                (Err(err), None) => {
                    assert_eq!(err.from, from.name());
                    assert!(err.to_string().contains(S::WHAT), "{err}");
                }
                (Ok(step), None) => {
                    panic!("{event:?} from {from:?} must be refused, went to {:?}", step.to)
                }
                (Err(err), Some(to)) => panic!("{event:?} from {from:?} must go to {to:?}: {err}"),
            }
            checked += 1;
        }
        let steps = S::steps(event);
        let listed: Vec<Step<S>> = legal
            .iter()
            .filter(|(_, e, _)| *e == event)
            .map(|&(from, _, to)| Step { from, to })
            .collect();
        assert_eq!(steps, listed, "steps of {event:?}, in the order of STATES");
    }
    assert_eq!(checked, events.len() * S::STATES.len());
    for &state in S::STATES {
        let out = legal.iter().any(|(f, _, _)| *f == state);
        assert_eq!(!out, finals.contains(&state), "{state:?}: final states are exactly {finals:?}");
    }
}
