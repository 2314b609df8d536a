//! Where a transaction stands over time: statuses are ranked so the recorded state only moves forward,
//! whatever order the network delivers events in.
//!
//! `pending` < `timeout` < `failed` = `succeeded` < `reversed`. `failed` and `succeeded` are final outcomes,
//! and `reversed` stands for the success it reverses: an event whose outcome is the other one than the
//! recorded state's (money moved against money not moved) is a *contradiction* (a money question for a
//! human), whichever arrives first, and leaves the state as it is. An event ranking below the recorded state
//! is a *regression* (a `timeout` after `succeeded`): still enqueued, flagged. Non-payment notifications
//! (Choice onboarding, OTPs, account status...) keep their own state apart, the latest by the notification's
//! own time, else by arrival: they never move, or hide, a payment status.
//!
//! The store applies these rules with one conditional write per event ([`crate::ports::TransactionStore::advance`]);
//! this module says what the write may do and what the event's flags are.

use strum::{EnumCount, VariantArray};

use crate::event::Status;

/// A payment status, ranked.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray, strum::EnumCount,
)]
#[strum(serialize_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Timeout,
    Failed,
    Succeeded,
    Reversed,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; Self::COUNT] = *Self::VARIANTS.first_chunk().expect("one entry per variant");

    pub fn rank(self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Timeout => 1,
            PaymentStatus::Failed | PaymentStatus::Succeeded => 2,
            PaymentStatus::Reversed => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }

    fn status(self) -> Status {
        match self {
            PaymentStatus::Pending => Status::Pending,
            PaymentStatus::Timeout => Status::Timeout,
            PaymentStatus::Failed => Status::Failed,
            PaymentStatus::Succeeded => Status::Succeeded,
            PaymentStatus::Reversed => Status::Reversed,
        }
    }

    /// The payment status an event's normalised status is, if it is one.
    pub fn of(status: Status) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.status() == status)
    }

    /// Whether an event with status `self` may replace a recorded `current`: it ranks higher, and a
    /// reversal never replaces a failure.
    pub fn replaces(self, current: PaymentStatus) -> bool {
        self.rank() > current.rank() && !(self == PaymentStatus::Reversed && current == PaymentStatus::Failed)
    }

    /// The final outcome this status stands for: money moved (`succeeded`, and `reversed`, which stands for
    /// the success it reverses) or not (`failed`); `None` while the payment is not final.
    pub fn outcome(self) -> Option<MoneyMoved> {
        match self {
            PaymentStatus::Succeeded | PaymentStatus::Reversed => Some(MoneyMoved(true)),
            PaymentStatus::Failed => Some(MoneyMoved(false)),
            PaymentStatus::Pending | PaymentStatus::Timeout => None,
        }
    }

    /// Whether two statuses are final outcomes of opposite kinds, in either order.
    pub fn contradicts(self, other: PaymentStatus) -> bool {
        matches!((self.outcome(), other.outcome()), (Some(a), Some(b)) if a != b)
    }
}

/// A payment's final outcome: whether money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyMoved(pub bool);

impl PaymentStatus {}

/// What one event says about its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A payment status, ranked.
    Payment(PaymentStatus),
    /// A non-payment notification's state, ordered by time (ms): the notification's own, else arrival.
    Notification { state: String, at_ms: i64 },
    /// A status that is neither (`unknown`): it changes nothing.
    Unknown,
}

impl Step {
    pub fn of(status: Status, at_ms: i64) -> Self {
        match (PaymentStatus::of(status), status) {
            (Some(payment), _) => Step::Payment(payment),
            (None, Status::State(state)) => Step::Notification { state: state.to_owned(), at_ms },
            (None, _) => Step::Unknown,
        }
    }
}

/// Where a transaction stands after an event, as the event's envelope says it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransactionView {
    /// The transaction's status after this event (`None` when nothing is recorded yet for it).
    #[serde(rename = "transaction_status")]
    pub status: Option<String>,
    /// The event ranks below the state already recorded.
    pub regression: bool,
    /// The event and the recorded state are final outcomes of opposite kinds ([`PaymentStatus::contradicts`]):
    /// `failed` and `succeeded` or `reversed`, in either order.
    pub contradiction: bool,
}

/// The view after a payment event with status `incoming`, given the state `current` it found (`None`: none
/// yet). Whether the event replaced the state is [`PaymentStatus::replaces`].
pub fn payment_view(current: Option<PaymentStatus>, incoming: PaymentStatus) -> TransactionView {
    let Some(current) = current else {
        return TransactionView { status: Some(incoming.as_str().to_owned()), regression: false, contradiction: false };
    };
    if incoming.replaces(current) {
        return TransactionView { status: Some(incoming.as_str().to_owned()), regression: false, contradiction: false };
    }
    TransactionView {
        status: Some(current.as_str().to_owned()),
        regression: incoming.rank() < current.rank(),
        contradiction: incoming.contradicts(current),
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;
    use super::*;

    fn after(events: &[PaymentStatus]) -> (PaymentStatus, Vec<(bool, bool)>) {
        let mut current = None;
        let mut flags = Vec::new();
        for &e in events {
            let view = payment_view(current, e);
            flags.push((view.regression, view.contradiction));
            if current.is_none_or(|c| e.replaces(c)) {
                current = Some(e);
            }
        }
        (current.unwrap(), flags)
    }

    #[test]
    fn every_order_of_pending_timeout_succeeded_ends_succeeded() {
        let orders = [
            [Pending, Timeout, Succeeded],
            [Pending, Succeeded, Timeout],
            [Timeout, Pending, Succeeded],
            [Timeout, Succeeded, Pending],
            [Succeeded, Pending, Timeout],
            [Succeeded, Timeout, Pending],
        ];
        for order in orders {
            let (state, flags) = after(&order);
            assert_eq!(state, Succeeded, "{order:?}");
            assert!(flags.iter().all(|(_, c)| !c), "{order:?}");
            // Exactly the events that arrive after a higher rank are regressions.
            let expected: Vec<bool> =
                (0..3).map(|i| order[..i].iter().any(|earlier| earlier.rank() > order[i].rank())).collect();
            assert_eq!(flags.iter().map(|(r, _)| *r).collect::<Vec<_>>(), expected, "{order:?}");
        }
    }

    #[test]
    fn final_outcomes_hold_and_contradictions_are_flagged() {
        assert_eq!(after(&[Succeeded, Failed]), (Succeeded, vec![(false, false), (false, true)]));
        assert_eq!(after(&[Failed, Succeeded]), (Failed, vec![(false, false), (false, true)]));
        assert_eq!(after(&[Succeeded, Reversed]), (Reversed, vec![(false, false), (false, false)]));
        assert_eq!(after(&[Reversed, Succeeded]), (Reversed, vec![(false, false), (true, false)]));
        assert_eq!(after(&[Failed, Reversed]), (Failed, vec![(false, false), (false, true)]));
        assert_eq!(after(&[Succeeded, Succeeded]), (Succeeded, vec![(false, false), (false, false)]));
    }

    /// The same two final outcomes are flagged whichever arrives first, a reversal standing for the success
    /// it reverses.
    #[test]
    fn a_contradiction_is_flagged_in_either_order() {
        assert_eq!(after(&[Reversed, Failed]), (Reversed, vec![(false, false), (true, true)]));
        assert_eq!(after(&[Succeeded, Reversed, Failed]).1[2], (true, true));
        for (a, b) in [(Succeeded, Failed), (Reversed, Failed)] {
            let flagged = |order: [PaymentStatus; 2]| after(&order).1[1].1;
            assert!(flagged([a, b]) && flagged([b, a]), "{a:?} and {b:?}");
        }
        for a in PaymentStatus::ALL {
            for b in PaymentStatus::ALL {
                assert_eq!(after(&[a, b]).1[1].1, after(&[b, a]).1[1].1, "{a:?} then {b:?}, and the reverse");
            }
        }
    }
}
