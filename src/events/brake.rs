//! The mass-deprovisioning brake's rules (DESIGN 20), without I/O: which events count,
//! the sliding window, and when a tenant's lane must hold.
//!
//! Three measures per tenant: users deprovisioned (`user.deactivated` + `user.deleted`),
//! members removed (the ids of `group.members_removed`), groups deleted. Each trips when,
//! within the window, it exceeds its count, or — once it reaches its minimum — its share
//! of the tenant (active users, memberships, groups). The window slides by the usual
//! two-bucket estimate (the previous window's count weighted by how much of it still
//! overlaps, plus the current one's): O(1) state and work per event.

use super::EventType;
use crate::domain::{BrakeSettings, Threshold};

/// What an event counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Users,
    Members,
    Groups,
}

pub const MEASURES: [Measure; 3] = [Measure::Users, Measure::Members, Measure::Groups];

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Users => "users",
            Measure::Members => "members",
            Measure::Groups => "groups",
        }
    }

    fn index(self) -> usize {
        match self {
            Measure::Users => 0,
            Measure::Members => 1,
            Measure::Groups => 2,
        }
    }

    fn threshold(self, settings: &BrakeSettings) -> Threshold {
        match self {
            Measure::Users => settings.users,
            Measure::Members => settings.members,
            Measure::Groups => settings.groups,
        }
    }
}

/// The measure an event counts for and by how much (`members` ids of a membership event).
pub fn measure(event_type: EventType, members: i64) -> Option<(Measure, i64)> {
    match event_type {
        EventType::UserDeactivated | EventType::UserDeleted => Some((Measure::Users, 1)),
        EventType::GroupMembersRemoved => Some((Measure::Members, members.max(1))),
        EventType::GroupDeleted => Some((Measure::Groups, 1)),
        _ => None,
    }
}

/// The window's state: when the current window began (Unix seconds) and each measure's
/// count in the current and the previous window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub current: [i64; 3],
    pub previous: [i64; 3],
}

impl Window {
    /// Moves the window to `now`: a new window starts every `length` seconds.
    pub fn advance(&mut self, now: i64, length: i64) {
        if now < self.start + length {
            return;
        }
        if now < self.start + 2 * length {
            self.previous = self.current;
            self.start += length;
        } else {
            self.previous = [0; 3];
            self.start = now;
        }
        self.current = [0; 3];
    }

    pub fn add(&mut self, measure: Measure, n: i64) {
        self.current[measure.index()] += n;
    }

    /// The estimate of the last `length` seconds' count of `measure` at `now`.
    pub fn estimate(&self, measure: Measure, now: i64, length: i64) -> f64 {
        let elapsed = (now - self.start).clamp(0, length) as f64;
        let overlap = 1.0 - elapsed / length as f64;
        self.previous[measure.index()] as f64 * overlap + self.current[measure.index()] as f64
    }
}

/// Which thresholds the window exceeds at `now`, each described for the operator; `bases`
/// are the tenant's active users, memberships and groups.
pub fn tripped(
    settings: &BrakeSettings,
    window: &Window,
    now: i64,
    bases: [i64; 3],
) -> Vec<String> {
    if !settings.enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in MEASURES {
        let t = m.threshold(settings);
        let seen = window.estimate(m, now, settings.window_seconds);
        let base = bases[m.index()].max(1) as f64;
        let share = 100.0 * seen / base;
        if seen > t.count as f64 {
            out.push(format!(
                "{}: {seen:.0} within {} s, more than {}",
                m.name(),
                settings.window_seconds,
                t.count
            ));
        } else if seen >= t.min as f64 && share > t.percent {
            out.push(format!(
                "{}: {seen:.0} within {} s, {share:.1} % of {}, more than {} %",
                m.name(),
                settings.window_seconds,
                bases[m.index()],
                t.percent
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprovisioning_events_count_and_others_do_not() {
        assert_eq!(
            measure(EventType::UserDeactivated, 0),
            Some((Measure::Users, 1))
        );
        assert_eq!(
            measure(EventType::UserDeleted, 0),
            Some((Measure::Users, 1))
        );
        assert_eq!(
            measure(EventType::GroupMembersRemoved, 40),
            Some((Measure::Members, 40))
        );
        assert_eq!(
            measure(EventType::GroupDeleted, 0),
            Some((Measure::Groups, 1))
        );
        assert_eq!(measure(EventType::UserReactivated, 0), None);
        assert_eq!(measure(EventType::UserUpdated, 0), None);
    }

    #[test]
    fn the_window_slides_with_the_previous_count_weighted() {
        let mut w = Window::default();
        w.advance(1000, 100);
        assert_eq!(w.start, 1000);
        for _ in 0..10 {
            w.add(Measure::Users, 1);
        }
        assert_eq!(w.estimate(Measure::Users, 1050, 100), 10.0);
        w.advance(1100, 100);
        assert_eq!(w.previous[0], 10);
        assert_eq!(w.current[0], 0);
        // A quarter into the next window, three quarters of the previous one still count.
        assert_eq!(w.estimate(Measure::Users, 1125, 100), 7.5);
        // Two windows later, nothing is left.
        w.advance(1300, 100);
        assert_eq!(w.estimate(Measure::Users, 1300, 100), 0.0);
    }

    #[test]
    fn a_count_or_a_share_past_its_minimum_trips() {
        let settings = BrakeSettings::default();
        let mut w = Window {
            start: 0,
            ..Window::default()
        };
        for _ in 0..24 {
            w.add(Measure::Users, 1);
        }
        // 24 of 100 active users: over 20 %, but under the minimum of 25.
        assert!(tripped(&settings, &w, 10, [100, 1000, 10]).is_empty());
        w.add(Measure::Users, 1);
        let why = tripped(&settings, &w, 10, [100, 1000, 10]);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("users: 25"), "{why:?}");
        // 25 of 10 000 is no share; 501 is over the count whatever the tenant.
        assert!(tripped(&settings, &w, 10, [10_000, 1000, 10]).is_empty());
        for _ in 0..476 {
            w.add(Measure::Users, 1);
        }
        assert_eq!(tripped(&settings, &w, 10, [1_000_000, 1000, 10]).len(), 1);
        let off = BrakeSettings {
            enabled: false,
            ..settings
        };
        assert!(tripped(&off, &w, 10, [100, 1000, 10]).is_empty());
    }

    #[test]
    fn settings_are_checked() {
        assert!(BrakeSettings::default().check().is_ok());
        let bad = BrakeSettings {
            window_seconds: 0,
            ..BrakeSettings::default()
        };
        assert!(bad.check().is_err());
        let mut bad = BrakeSettings::default();
        bad.users = Threshold {
            percent: 101.0,
            ..bad.users
        };
        assert!(bad.check().is_err());
    }
}
