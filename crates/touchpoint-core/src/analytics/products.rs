//! Product and category performance and roles.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::ratio;

/// Per-product (or per-category) purchase totals, as aggregated by the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductFacts {
    /// SKU, or category name (empty when unknown).
    pub key: String,
    /// Product name (the category for a category row).
    pub name: String,
    /// Category (empty when unknown).
    pub category: String,
    /// Net revenue allocated to its lines, minor units.
    pub net_revenue: i64,
    /// Units sold.
    pub units: i64,
    /// Cost of goods, minor units.
    pub cogs: i64,
    /// Purchase orders containing it.
    pub orders: u64,
    /// Of those, orders that were the member's first purchase order.
    pub first_orders: u64,
    /// Members whose first purchase order contained it.
    pub first_order_members: u64,
    /// Of those, members who bought again on a later day.
    pub first_order_repeaters: u64,
}

/// The inputs of the product report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductData {
    /// One row per product.
    pub products: Vec<ProductFacts>,
    /// One row per category.
    pub categories: Vec<ProductFacts>,
    /// Purchase orders in scope.
    pub total_orders: u64,
    /// Of those, first purchase orders (one per member).
    pub total_first_orders: u64,
    /// The as-of day.
    pub as_of_day: i32,
}

/// What a product does for the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductRole {
    /// Brings new customers: over-represented in first orders.
    TrafficDriver,
    /// Earns the margin: high margin rate and above-average margin.
    ProfitDriver,
    /// Moves units: above-average units.
    VolumeDriver,
    /// None of the above.
    Other,
}

impl ProductRole {
    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            ProductRole::TrafficDriver => "traffic driver",
            ProductRole::ProfitDriver => "profit driver",
            ProductRole::VolumeDriver => "volume driver",
            ProductRole::Other => "other",
        }
    }
}

/// One product or category in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    /// SKU or category.
    pub key: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Net revenue, minor units.
    pub net_revenue: i64,
    /// Units.
    pub units: i64,
    /// `net_revenue - cogs`, minor units.
    pub gross_margin: i64,
    /// `gross_margin / net_revenue`.
    pub margin_rate: f64,
    /// Purchase orders containing it.
    pub orders: u64,
    /// `first_orders / orders`.
    pub first_order_share: f64,
    /// `first_order_repeaters / first_order_members`.
    pub first_order_repeat_rate: f64,
    /// Role.
    pub role: ProductRole,
}

/// The product report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductReport {
    /// As-of date.
    pub as_of: NaiveDate,
    /// Share of all purchase orders that are first orders (the traffic baseline).
    pub first_order_share: f64,
    /// Margin rate of all products together.
    pub margin_rate: f64,
    /// Products by net revenue, highest first.
    pub products: Vec<ProductRow>,
    /// Categories by net revenue, highest first.
    pub categories: Vec<ProductRow>,
}

/// Role rule (first match wins), over the rows of one level:
/// 1. traffic driver: `first_order_share >= 1.2 x` the all-orders first-order share
///    and at least 1% of all first orders;
/// 2. profit driver: margin rate >= the level's overall margin rate and gross
///    margin >= the mean gross margin of the level's rows;
/// 3. volume driver: units >= the mean units of the level's rows;
/// 4. other.
fn rows(facts: &[ProductFacts], total_orders: u64, total_first: u64) -> Vec<ProductRow> {
    let base = ratio(total_first as f64, total_orders as f64);
    let k = facts.len().max(1) as f64;
    let revenue: i64 = facts.iter().map(|f| f.net_revenue).sum();
    let margin: i64 = facts.iter().map(|f| f.net_revenue - f.cogs).sum();
    let level_rate = ratio(margin as f64, revenue as f64);
    let mean_margin = margin as f64 / k;
    let mean_units = facts.iter().map(|f| f.units).sum::<i64>() as f64 / k;
    let mut out: Vec<ProductRow> = facts
        .iter()
        .map(|f| {
            let gm = f.net_revenue - f.cogs;
            let rate = ratio(gm as f64, f.net_revenue as f64);
            let fos = ratio(f.first_orders as f64, f.orders as f64);
            let role = if f.orders > 0
                && fos >= 1.2 * base
                && f.first_orders as f64 >= 0.01 * total_first as f64
            {
                ProductRole::TrafficDriver
            } else if f.net_revenue > 0 && rate >= level_rate && gm as f64 >= mean_margin {
                ProductRole::ProfitDriver
            } else if f.units as f64 >= mean_units && f.units > 0 {
                ProductRole::VolumeDriver
            } else {
                ProductRole::Other
            };
            ProductRow {
                key: f.key.clone(),
                name: f.name.clone(),
                category: f.category.clone(),
                net_revenue: f.net_revenue,
                units: f.units,
                gross_margin: gm,
                margin_rate: rate,
                orders: f.orders,
                first_order_share: fos,
                first_order_repeat_rate: ratio(
                    f.first_order_repeaters as f64,
                    f.first_order_members as f64,
                ),
                role,
            }
        })
        .collect();
    out.sort_by(|a, b| b.net_revenue.cmp(&a.net_revenue).then(a.key.cmp(&b.key)));
    out
}

/// The product report.
pub fn products(data: &ProductData) -> ProductReport {
    let revenue: i64 = data.products.iter().map(|f| f.net_revenue).sum();
    let margin: i64 = data.products.iter().map(|f| f.net_revenue - f.cogs).sum();
    ProductReport {
        as_of: super::day_to_date(data.as_of_day),
        first_order_share: ratio(data.total_first_orders as f64, data.total_orders as f64),
        margin_rate: ratio(margin as f64, revenue as f64),
        products: rows(&data.products, data.total_orders, data.total_first_orders),
        categories: rows(&data.categories, data.total_orders, data.total_first_orders),
    }
}
