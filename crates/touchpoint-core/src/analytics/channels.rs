//! Per-channel members, orders and revenue, and the channel overlap matrix.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{ratio, Dataset};

/// One channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRow {
    /// Channel.
    pub channel: String,
    /// Members with a purchase in the channel.
    pub members: u64,
    /// Members whose first purchase was in the channel.
    pub new_members: u64,
    /// Purchase orders.
    pub orders: u64,
    /// Net revenue, minor units.
    pub net_revenue: i64,
    /// Average order value: `net_revenue / orders`, minor units.
    pub aov: f64,
    /// Share of the channel's members with purchases on two or more distinct days in it.
    pub repeat_rate: f64,
}

/// The channel report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// Channels by name.
    pub channels: Vec<ChannelRow>,
    /// `overlap[i][j]`: members who bought in both `channels[i]` and
    /// `channels[j]` (the diagonal is the channel's members).
    pub overlap: Vec<Vec<u64>>,
    /// Members with purchases in two or more channels.
    pub multi_channel_members: u64,
}

/// The channel report.
pub fn channels(data: &Dataset) -> ChannelReport {
    let k = data.channels.len();
    let mut rows: Vec<ChannelRow> = data
        .channels
        .iter()
        .map(|c| ChannelRow {
            channel: c.clone(),
            members: 0,
            new_members: 0,
            orders: 0,
            net_revenue: 0,
            aov: 0.0,
            repeat_rate: 0.0,
        })
        .collect();
    let mut repeaters = vec![0u64; k];
    let mut overlap = vec![vec![0u64; k]; k];
    let mut multi = 0;
    let mut days = vec![0u32; k];
    let mut last_day = vec![i32::MIN; k];
    let mut seen: Vec<usize> = Vec::new();
    for m in &data.members {
        seen.clear();
        for a in &m.activity {
            let c = a.channel as usize;
            if days[c] == 0 {
                seen.push(c);
            }
            if last_day[c] != a.day {
                days[c] += 1;
                last_day[c] = a.day;
            }
            rows[c].orders += u64::from(a.orders);
            rows[c].net_revenue += a.net_revenue;
        }
        rows[m.first_channel as usize].new_members += 1;
        if seen.len() > 1 {
            multi += 1;
        }
        for &i in &seen {
            rows[i].members += 1;
            if days[i] >= 2 {
                repeaters[i] += 1;
            }
            for &j in &seen {
                overlap[i][j] += 1;
            }
        }
        for &i in &seen {
            days[i] = 0;
            last_day[i] = i32::MIN;
        }
    }
    for (i, r) in rows.iter_mut().enumerate() {
        r.aov = ratio(r.net_revenue as f64, r.orders as f64);
        r.repeat_rate = ratio(repeaters[i] as f64, r.members as f64);
    }
    // Sort by name, permuting the matrix alike.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|a, b| data.channels[*a].cmp(&data.channels[*b]));
    ChannelReport {
        as_of: data.as_of(),
        channels: order.iter().map(|&i| rows[i].clone()).collect(),
        overlap: order
            .iter()
            .map(|&i| order.iter().map(|&j| overlap[i][j]).collect())
            .collect(),
        multi_channel_members: multi,
    }
}
