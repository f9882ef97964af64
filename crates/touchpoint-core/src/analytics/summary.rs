//! The one-screen summary of every report.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{
    abc, channels, cohorts, products, retention, rfm, AbcConfig, AbcReport, ChannelReport, Dataset,
    ProductData, ProductRole, RetentionReport, RetentionThresholds, RfmReport,
};

/// Headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// Members with a purchase.
    pub members: u64,
    /// Net revenue, minor units.
    pub net_revenue: i64,
    /// RFM segments (members, shares).
    pub rfm: RfmReport,
    /// ABC classes and the share of members that make 80% of contribution.
    pub abc: AbcReport,
    /// Retention numbers and flags.
    pub retention: RetentionReport,
    /// Channels.
    pub channels: ChannelReport,
    /// Number of cohorts (months of first purchase).
    pub cohorts: u64,
    /// Mean share of a cohort still buying 3 months after its first month
    /// (cohorts old enough), weighted by cohort size.
    pub month_3_active_share: f64,
    /// Top products by role: (role, sku, net revenue), at most 3 per role.
    pub top_products: Vec<(ProductRole, String, i64)>,
}

/// Compute every report and keep the headline numbers.
pub fn summary(
    data: &Dataset,
    product_data: &ProductData,
    abc_config: &AbcConfig,
    thresholds: &RetentionThresholds,
) -> SummaryReport {
    let r = rfm(data, false);
    let mut a = abc(data, abc_config, false);
    a.pareto.retain(|p| {
        let pct = (p.member_share * 100.0).round() as i64;
        pct % 10 == 0
    });
    a.loss_making.truncate(5);
    let c = cohorts(data, false);
    let (mut n3, mut a3) = (0u64, 0u64);
    for row in &c.cohorts {
        if let Some(cell) = row.cells.get(3) {
            n3 += row.members;
            a3 += cell.active_members;
        }
    }
    let p = products(product_data);
    let mut top = Vec::new();
    for role in [
        ProductRole::TrafficDriver,
        ProductRole::ProfitDriver,
        ProductRole::VolumeDriver,
    ] {
        top.extend(
            p.products
                .iter()
                .filter(|x| x.role == role)
                .take(3)
                .map(|x| (role, x.key.clone(), x.net_revenue)),
        );
    }
    SummaryReport {
        as_of: data.as_of(),
        members: data.members.len() as u64,
        net_revenue: r.revenue,
        rfm: r,
        abc: a,
        retention: retention(data, thresholds),
        channels: channels(data),
        cohorts: c.cohorts.len() as u64,
        month_3_active_share: super::ratio(a3 as f64, n3 as f64),
        top_products: top,
    }
}
