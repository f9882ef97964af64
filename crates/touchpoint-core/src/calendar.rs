//! The holiday calendar of the `holiday` campaign trigger: a built-in
//! Chinese e-commerce calendar (2024-2032), to which a campaign file's
//! `[calendar]` table adds dates or replaces a holiday's dates.
//!
//! Fixed-date holidays fall on the same month and day every year; the
//! lunar ones (Spring Festival, Qixi) come from the tables below (Gregorian
//! dates of the first day of the first lunar month, and of the seventh day
//! of the seventh lunar month, in China Standard Time).

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// The first and last year of the built-in lunar tables.
pub const YEARS: (i32, i32) = (2024, 2032);

/// Spring Festival (春节, lunar new year), 2024-2032.
pub const SPRING_FESTIVAL: [(i32, u32, u32); 9] = [
    (2024, 2, 10),
    (2025, 1, 29),
    (2026, 2, 17),
    (2027, 2, 6),
    (2028, 1, 26),
    (2029, 2, 13),
    (2030, 2, 3),
    (2031, 1, 23),
    (2032, 2, 11),
];

/// Qixi (七夕, the seventh day of the seventh lunar month), 2024-2032.
pub const QIXI: [(i32, u32, u32); 9] = [
    (2024, 8, 10),
    (2025, 8, 29),
    (2026, 8, 19),
    (2027, 8, 8),
    (2028, 8, 26),
    (2029, 8, 16),
    (2030, 8, 5),
    (2031, 8, 24),
    (2032, 8, 12),
];

/// Fixed-date holidays: name, month, day, what it is.
pub const FIXED: [(&str, u32, u32, &str); 10] = [
    ("new_year", 1, 1, "New Year's Day"),
    ("womens_day", 3, 8, "3.8 Women's Day (女王节)"),
    ("520", 5, 20, "5.20 (520, \"I love you\")"),
    ("618", 6, 18, "6.18 mid-year festival (JD)"),
    ("88", 8, 8, "8.8 members' day"),
    ("99", 9, 9, "9.9 sale"),
    ("double11", 11, 11, "Double 11, Singles' Day (双十一)"),
    ("double12", 12, 12, "Double 12 (双十二)"),
    ("christmas_eve", 12, 24, "Christmas Eve"),
    ("christmas", 12, 25, "Christmas"),
];

/// Every built-in holiday name, lunar ones first.
pub fn builtin_names() -> Vec<&'static str> {
    let mut v = vec!["spring_festival", "qixi"];
    v.extend(FIXED.iter().map(|f| f.0));
    v
}

/// The built-in dates of a holiday in the years 2024-2032, or `None` for a
/// name that is not built in.
pub fn builtin(name: &str) -> Option<Vec<NaiveDate>> {
    let table = |t: &[(i32, u32, u32)]| {
        t.iter()
            .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d))
            .collect()
    };
    match name {
        "spring_festival" => Some(table(&SPRING_FESTIVAL)),
        "qixi" => Some(table(&QIXI)),
        _ => {
            let f = FIXED.iter().find(|f| f.0 == name)?;
            Some(
                (YEARS.0..=YEARS.1)
                    .filter_map(|y| NaiveDate::from_ymd_opt(y, f.1, f.2))
                    .collect(),
            )
        }
    }
}

/// A calendar: holiday name to its dates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// Dates by holiday, sorted.
    pub dates: BTreeMap<String, Vec<NaiveDate>>,
}

impl Calendar {
    /// The built-in calendar with `overrides` applied: a name given there
    /// replaces the built-in dates of that name, or adds a holiday.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<NaiveDate>>) -> Calendar {
        let mut dates = BTreeMap::new();
        for n in builtin_names() {
            dates.insert(n.to_string(), builtin(n).unwrap_or_default());
        }
        for (k, v) in overrides {
            let mut v = v.clone();
            v.sort();
            v.dedup();
            dates.insert(k.clone(), v);
        }
        Calendar { dates }
    }

    /// The holidays among `names` whose date is within `days_before` days
    /// after `today` (the day itself included): (name, date).
    pub fn upcoming(
        &self,
        names: &[String],
        today: NaiveDate,
        days_before: u32,
    ) -> Vec<(String, NaiveDate)> {
        let mut out = Vec::new();
        for n in names {
            for d in self.dates.get(n).into_iter().flatten() {
                let from = *d - chrono::Days::new(u64::from(days_before));
                if from <= today && today <= *d {
                    out.push((n.clone(), *d));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn lunar_tables_cover_2024_to_2032_and_fixed_days_repeat() {
        let sf = builtin("spring_festival").unwrap();
        assert_eq!(sf.len(), 9);
        assert_eq!(sf[2], d(2026, 2, 17));
        assert_eq!(builtin("qixi").unwrap()[1], d(2025, 8, 29));
        let d11 = builtin("double11").unwrap();
        assert_eq!((d11[0], d11[8]), (d(2024, 11, 11), d(2032, 11, 11)));
        assert!(builtin("easter").is_none());
    }

    #[test]
    fn overrides_replace_or_add_and_upcoming_counts_days_before() {
        let mut o = BTreeMap::new();
        o.insert("618".to_string(), vec![d(2026, 6, 1)]);
        o.insert("anniversary".to_string(), vec![d(2026, 9, 1)]);
        let c = Calendar::with_overrides(&o);
        assert_eq!(c.dates["618"], vec![d(2026, 6, 1)]);
        let names = vec!["double11".to_string(), "anniversary".to_string()];
        // 3 days before 11.11: the 8th, 9th, 10th and 11th.
        assert_eq!(
            c.upcoming(&names, d(2026, 11, 8), 3),
            vec![("double11".to_string(), d(2026, 11, 11))]
        );
        assert!(c.upcoming(&names, d(2026, 11, 7), 3).is_empty());
        assert!(c.upcoming(&names, d(2026, 11, 12), 3).is_empty());
        assert_eq!(c.upcoming(&names, d(2026, 9, 1), 0).len(), 1);
    }
}
