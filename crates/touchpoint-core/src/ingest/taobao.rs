//! The Taobao / Tmall seller order report (订单报表): one row per order, Chinese
//! headers, UTF-8 or GBK. See `docs/import.md` for the mapping.
//!
//! Every row is an order of its own; the reader holds one row at a time.

use super::common::{field, missing_columns, CsvRows, Errs, IdSet, RawRow};
use super::*;
use crate::types::Phone;

/// The full header of a Taobao order report, in order.
pub const COLUMNS: [&str; 49] = [
    "订单编号",
    "买家会员名",
    "买家支付宝账号",
    "支付单号",
    "支付详情",
    "买家应付货款",
    "买家应付邮费",
    "买家支付积分",
    "总金额",
    "返点积分",
    "买家实际支付金额",
    "买家实际支付积分",
    "订单状态",
    "买家留言",
    "收货人姓名",
    "收货地址",
    "运送方式",
    "联系电话",
    "联系手机",
    "订单创建时间",
    "订单付款时间",
    "宝贝标题",
    "宝贝种类",
    "物流单号",
    "物流公司",
    "订单备注",
    "宝贝总数量",
    "店铺Id",
    "店铺名称",
    "订单关闭原因",
    "卖家服务费",
    "买家服务费",
    "发票抬头",
    "是否手机订单",
    "分阶段订单信息",
    "特权订金订单id",
    "是否上传合同照片",
    "是否上传小票",
    "是否代付",
    "定金排名",
    "修改后的sku",
    "修改后的收货地址",
    "异常信息",
    "天猫卡券抵扣",
    "集分宝抵扣",
    "是否是O2O交易",
    "退款金额",
    "预约门店",
    "商家编码",
];

/// Columns a Taobao file must have (exact names, trimmed).
pub const REQUIRED_COLUMNS: [&str; 7] = [
    "订单编号",
    "买家会员名",
    "买家实际支付金额",
    "订单状态",
    "订单创建时间",
    "宝贝标题",
    "宝贝总数量",
];

/// The accepted forms of 订单创建时间 / 订单付款时间 (local time in the business time zone).
pub const DATE_FORM: &str = "a time such as 2024-11-11 00:01:23 or 2024/11/11 0:01:23";

/// The accepted 订单状态 values.
pub const STATUS_FORM: &str =
    "one of 交易成功, 卖家已发货，等待买家确认, 买家已付款，等待卖家发货, 已发货, 等待买家付款, 交易关闭, 付款以前，卖家或买家主动关闭交易";

const FORMAT: &str = "taobao";

/// What an 订单状态 says before refunds are looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Paid,
    Pending,
    Closed,
    ClosedUnpaid,
}

fn parse_state(s: &str) -> Option<State> {
    // Exports write the full-width comma; people retyping write ','.
    let s = s.trim().replace([',', ' '], "，").replace("，，", "，");
    match s.as_str() {
        "交易成功" | "卖家已发货，等待买家确认" | "买家已付款，等待卖家发货" | "已发货" => {
            Some(State::Paid)
        }
        "等待买家付款" => Some(State::Pending),
        "交易关闭" => Some(State::Closed),
        "付款以前，卖家或买家主动关闭交易" => Some(State::ClosedUnpaid),
        _ => None,
    }
}

/// An order id as exports write it: `="2024111122334455"`, `'2024...`, or with
/// a leading tab, all mean `2024111122334455`.
pub fn clean_order_id(s: &str) -> String {
    let t = s.trim().trim_start_matches(['\'', '\t']).trim();
    let t = t.strip_prefix('=').map(str::trim).unwrap_or(t);
    t.trim_matches('"').trim().to_string()
}

/// Split a paid amount over `quantity` units exactly: the unit price is the
/// amount divided by the quantity rounded *up*, and the line discount the
/// difference (`0 <= discount < quantity` minor units), so that
/// `unit_price * quantity - discount == paid` to the fen.
pub fn split_amount(paid: Money, quantity: i64) -> (Money, Money) {
    let p = paid.minor();
    let unit = (p + quantity - 1).div_euclid(quantity);
    (
        Money::from_minor(unit),
        Money::from_minor(unit * quantity - p),
    )
}

struct Cols {
    order_id: Option<usize>,
    buyer: Option<usize>,
    paid: Option<usize>,
    status: Option<usize>,
    name: Option<usize>,
    address: Option<usize>,
    tel: Option<usize>,
    mobile: Option<usize>,
    created: Option<usize>,
    paid_at: Option<usize>,
    title: Option<usize>,
    quantity: Option<usize>,
    refund: Option<usize>,
    sku: Option<usize>,
}

/// The Taobao reader.
pub struct TaobaoReader<'a> {
    rows: CsvRows<'a>,
    cols: Cols,
    channel: ChannelName,
    options: ReadOptions,
}

/// Open a Taobao reader. `options.channel` is required (`tmall`, `taobao`,
/// ...: buyer ids are namespaced by it). The encoding is `options.encoding`,
/// else detected from the first 64 KiB (UTF-8, else GBK).
pub fn open<'a>(
    input: Box<dyn std::io::Read + 'a>,
    options: &ReadOptions,
) -> Result<Box<dyn OrderReader + 'a>, FileError> {
    let Some(channel) = options.channel.clone() else {
        return Err(FileError::NoChannel {
            format: FORMAT,
            hint: "pass --channel (e.g. --channel tmall); buyer ids are kept per channel".into(),
        });
    };
    let rows = CsvRows::open(input, options.encoding, &COLUMNS)?;
    let optional: Vec<&str> = COLUMNS
        .into_iter()
        .filter(|c| !REQUIRED_COLUMNS.contains(c))
        .collect();
    missing_columns(FORMAT, &REQUIRED_COLUMNS, &optional, rows.header(), |c| {
        rows.column_exact(c).is_some()
    })?;
    let c = |n: &str| rows.column_exact(n);
    let cols = Cols {
        order_id: c("订单编号"),
        buyer: c("买家会员名"),
        paid: c("买家实际支付金额"),
        status: c("订单状态"),
        name: c("收货人姓名"),
        address: c("收货地址"),
        tel: c("联系电话"),
        mobile: c("联系手机"),
        created: c("订单创建时间"),
        paid_at: c("订单付款时间"),
        title: c("宝贝标题"),
        quantity: c("宝贝总数量"),
        refund: c("退款金额"),
        sku: c("商家编码"),
    };
    Ok(Box::new(TaobaoReader {
        rows,
        cols,
        channel,
        options: options.clone(),
    }))
}

impl OrderReader for TaobaoReader<'_> {
    fn header(&self) -> &[String] {
        self.rows.header()
    }
    fn bytes_read(&self) -> u64 {
        self.rows.bytes_read()
    }
}

impl Iterator for TaobaoReader<'_> {
    type Item = Result<OrderRecord, Rejected>;
    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        Some(self.build(row))
    }
}

/// Masked numbers (`138****0001`, as newer exports write them) carry no
/// identity: they are skipped, not errors.
fn is_masked(v: &str) -> bool {
    v.contains('*')
}

impl TaobaoReader<'_> {
    fn build(&self, row: RawRow) -> Result<OrderRecord, Rejected> {
        let c = &self.cols;
        let opts = &self.options;
        let order_id = field(&row, c.order_id)
            .map(clean_order_id)
            .filter(|s| !s.is_empty());
        let reject = |errors: Vec<RowError>, row: RawRow| Rejected {
            order_id: order_id.clone(),
            errors,
            raw_rows: vec![row.fields],
        };
        if !row.errors.is_empty() {
            let errors = row.errors.clone();
            return Err(reject(errors, row));
        }
        let f = |idx| field(&row, idx);
        let mut e = Errs::new(row.line);
        if order_id.is_none() {
            e.push(
                "订单编号",
                f(c.order_id).unwrap_or(""),
                "订单编号 is required; expected an order number such as 2024111122334455",
            );
        }
        let mut ids = IdSet::default();
        if let Some(v) = e.required("买家会员名", f(c.buyer), "a buyer nick such as tb_buyer01")
        {
            match Identifier::platform_user_id(&self.channel, v) {
                Ok(id) => ids.add(id),
                Err(err) => e.push("买家会员名", v, format!("expected {err}")),
            }
        }
        match f(c.mobile).filter(|v| !is_masked(v)) {
            Some(v) => match Phone::parse(v, &opts.default_country) {
                Ok(p) => ids.add(Identifier::phone(&p)),
                Err(err) => e.push("联系手机", v, format!("expected {err}")),
            },
            None => {
                // 联系电话 is often a landline; it is used only if it is a mobile.
                if let Some(p) = f(c.tel)
                    .filter(|v| !is_masked(v))
                    .and_then(|v| Phone::parse(v, &opts.default_country).ok())
                    .filter(|p| is_mobile(p, &opts.default_country))
                {
                    ids.add(Identifier::phone(&p));
                }
            }
        }
        let paid = e
            .required("买家实际支付金额", f(c.paid), "an amount such as 128.00")
            .and_then(|v| e.money_nonneg("买家实际支付金额", v));
        let refund = match f(c.refund) {
            None => Some(Money::ZERO),
            Some(v) => e.money_nonneg("退款金额", v),
        };
        let state = e
            .required("订单状态", f(c.status), STATUS_FORM)
            .and_then(|v| {
                let s = parse_state(v);
                if s.is_none() {
                    e.push(
                        "订单状态",
                        v,
                        format!("unknown order status; expected {STATUS_FORM}"),
                    );
                }
                s
            });
        let ordered_at = e
            .required("订单创建时间", f(c.created), DATE_FORM)
            .and_then(|v| e.datetime("订单创建时间", v, opts.business_tz, DATE_FORM));
        let paid_at =
            f(c.paid_at).and_then(|v| e.datetime("订单付款时间", v, opts.business_tz, DATE_FORM));
        let title = e.required("宝贝标题", f(c.title), "a product title");
        let quantity = e
            .required("宝贝总数量", f(c.quantity), "a whole number of 1 or more")
            .and_then(|v| e.quantity("宝贝总数量", v));

        let status = match (state, paid, refund) {
            (Some(state), Some(paid), Some(refund)) => {
                if refund > paid {
                    e.push(
                        "退款金额",
                        f(c.refund).unwrap_or(""),
                        format!(
                            "the refund is more than 买家实际支付金额 ({paid}); expected an amount from 0 to {paid}"
                        ),
                    );
                    None
                } else {
                    Some(status_of(state, paid, refund))
                }
            }
            _ => None,
        };

        let (
            Some(order_id),
            Some(paid),
            Some(refund),
            Some(status),
            Some(ordered_at),
            Some(title),
            Some(quantity),
        ) = (
            order_id.clone(),
            paid,
            refund,
            status,
            ordered_at,
            title,
            quantity,
        )
        else {
            let mut errors = e.list;
            if errors.is_empty() {
                errors.push(RowError {
                    line: row.line,
                    column: None,
                    value: None,
                    message: "the order could not be read".into(),
                });
            }
            return Err(reject(errors, row));
        };
        if !e.list.is_empty() {
            return Err(reject(e.list, row));
        }
        let (unit_price, discount) = split_amount(paid, quantity);
        let line = OrderLine {
            sku: f(c.sku).unwrap_or(title).to_string(),
            product_name: Some(title.to_string()),
            brand: None,
            category: None,
            quantity,
            unit_price,
            unit_cost: None,
            discount,
        };
        Ok(OrderRecord {
            channel: self.channel.clone(),
            order_id,
            ordered_at,
            paid_at,
            status,
            currency: opts.default_currency.clone(),
            order_discount: Money::ZERO,
            refunded: refund,
            customer: Customer {
                identifiers: ids.list,
                name: f(c.name).map(str::to_string),
                gender: None,
                birthday: None,
                region: f(c.address)
                    .and_then(|a| a.split_whitespace().next())
                    .map(str::to_string),
            },
            lines: vec![line],
            campaign: None,
            source_line: row.line,
            coupon_codes: Vec::new(),
            referral_code: None,
        })
    }
}

/// The status from 订单状态 and 退款金额 (already checked `refund <= paid`).
fn status_of(state: State, paid: Money, refund: Money) -> OrderStatus {
    let refunded = refund > Money::ZERO;
    match state {
        State::Pending => OrderStatus::Pending,
        State::ClosedUnpaid => OrderStatus::Cancelled,
        State::Paid | State::Closed if refunded && refund == paid => OrderStatus::Refunded,
        State::Paid | State::Closed if refunded => OrderStatus::PartiallyRefunded,
        State::Paid => OrderStatus::Paid,
        State::Closed => OrderStatus::Cancelled,
    }
}

/// Whether a phone is a mobile number: for China (+86) `+861` and 11 national
/// digits; elsewhere any valid number counts.
fn is_mobile(p: &Phone, default_country: &str) -> bool {
    let s = p.as_str();
    if default_country == "86" || s.starts_with("+86") {
        s.len() == 14 && s.starts_with("+861")
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::testutil::{csv_with, ids, opts, read, Out};
    use super::*;
    use proptest::prelude::*;

    fn row<'a>(
        id: &'a str,
        status: &'a str,
        paid: &'a str,
        refund: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("订单编号", id),
            ("买家会员名", "tb_buyer01"),
            ("买家实际支付金额", paid),
            ("订单状态", status),
            ("收货人姓名", "张三"),
            ("收货地址", "浙江省 杭州市 西湖区 文三路 1 号(310000)"),
            ("联系手机", "'13800000001"),
            ("订单创建时间", "2024-11-11 00:01:23"),
            ("订单付款时间", "2024-11-11 00:02:00"),
            ("宝贝标题", "运动鞋"),
            ("宝贝总数量", "3"),
            ("退款金额", refund),
        ]
    }

    fn with<'a>(mut r: Vec<(&'a str, &'a str)>, k: &'a str, v: &'a str) -> Vec<(&'a str, &'a str)> {
        r.retain(|(c, _)| *c != k);
        r.push((k, v));
        r
    }

    fn text(rows: &[&[(&str, &str)]]) -> String {
        csv_with(&COLUMNS, rows)
    }

    fn taobao(bytes: &[u8]) -> Out {
        read(
            InputFormat::Taobao,
            bytes,
            "ExportOrderList.csv",
            &opts(Some("tmall")),
        )
        .unwrap()
    }

    #[test]
    fn reads_orders_with_excel_quirks() {
        let a = row("=\"2024111122334455\"", "交易成功", "128.00", "0.00");
        let b = with(
            with(
                with(
                    row("'2024111122334456", "等待买家付款", "99.9", ""),
                    "订单付款时间",
                    "",
                ),
                "商家编码",
                "SHOE-42",
            ),
            "订单创建时间",
            "2024/11/11 0:01:23",
        );
        let c = with(
            with(
                row("\t2024111122334457", "已发货", "10", "0"),
                "联系手机",
                "",
            ),
            "联系电话",
            "0571-88880000",
        );
        let d = with(
            with(
                row("2024111122334458", "卖家已发货，等待买家确认", "10", "0"),
                "联系手机",
                "",
            ),
            "联系电话",
            "13900000009",
        );
        let e = with(
            row("2024111122334459", "买家已付款,等待卖家发货", "10", "0"),
            "联系手机",
            "138****0001",
        );
        let out = taobao(text(&[&a, &b, &c, &d, &e]).as_bytes());
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(
            ids(&out.orders),
            [
                "2024111122334455",
                "2024111122334456",
                "2024111122334457",
                "2024111122334458",
                "2024111122334459"
            ]
        );
        let o = &out.orders[0];
        assert_eq!(o.channel.as_str(), "tmall");
        assert_eq!(o.status, OrderStatus::Paid);
        assert_eq!(o.currency.as_str(), "CNY");
        assert_eq!(o.ordered_at.to_rfc3339(), "2024-11-10T16:01:23+00:00");
        assert_eq!(o.paid_at.unwrap().to_rfc3339(), "2024-11-10T16:02:00+00:00");
        assert_eq!(o.lines.len(), 1);
        let l = &o.lines[0];
        assert_eq!(
            (l.sku.as_str(), l.product_name.as_deref(), l.quantity),
            ("运动鞋", Some("运动鞋"), 3)
        );
        // 128.00 / 3: unit 42.67, discount 0.01.
        assert_eq!((l.unit_price.minor(), l.discount.minor()), (4267, 1));
        assert_eq!(o.gross_amount().minor(), 12800);
        let idents: Vec<_> = o.customer.identifiers.iter().map(|i| i.value()).collect();
        assert_eq!(idents, ["tmall:tb_buyer01", "+8613800000001"]);
        assert_eq!(o.customer.name.as_deref(), Some("张三"));
        assert_eq!(o.customer.region.as_deref(), Some("浙江省"));
        let o = &out.orders[1];
        assert_eq!((o.status, o.paid_at), (OrderStatus::Pending, None));
        assert_eq!(o.lines[0].sku, "SHOE-42");
        assert_eq!(o.ordered_at.to_rfc3339(), "2024-11-10T16:01:23+00:00");
        assert_eq!(o.gross_amount().minor(), 9990);
        // A landline in 联系电话 is not an identifier; a mobile there is.
        assert_eq!(out.orders[2].customer.identifiers.len(), 1);
        assert_eq!(
            out.orders[3].customer.identifiers[1].value(),
            "+8613900000009"
        );
        // A masked mobile is skipped.
        assert_eq!(out.orders[4].customer.identifiers.len(), 1);
        assert_eq!(out.orders[4].status, OrderStatus::Paid);
    }

    #[test]
    fn chinese_statuses_and_refunds() {
        let rows = [
            row("1", "交易成功", "100", "0"),
            row("2", "交易成功", "100", "30"),
            row("3", "交易成功", "100", "100"),
            row("4", "交易关闭", "100", "100"),
            row("5", "交易关闭", "100", "40"),
            row("6", "交易关闭", "100", "0"),
            row("7", "交易关闭", "0", ""),
            row("8", "等待买家付款", "100", ""),
            row("9", "付款以前，卖家或买家主动关闭交易", "100", ""),
        ];
        let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = taobao(text(&refs).as_bytes());
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        let got: Vec<_> = out
            .orders
            .iter()
            .map(|o| (o.status, o.refunded.minor()))
            .collect();
        use OrderStatus::*;
        assert_eq!(
            got,
            [
                (Paid, 0),
                (PartiallyRefunded, 3000),
                (Refunded, 10000),
                (Refunded, 10000),
                (PartiallyRefunded, 4000),
                (Cancelled, 0),
                (Cancelled, 0),
                (Pending, 0),
                (Cancelled, 0),
            ]
        );
    }

    #[test]
    fn gbk_files_are_detected_and_decoded() {
        let t = text(&[
            &row("=\"1001\"", "交易成功", "128.00", ""),
            &row("1002", "交易关闭", "5", "5"),
        ]);
        let (gbk, _, had_errors) = encoding_rs::GBK.encode(&t);
        assert!(!had_errors);
        let out = taobao(&gbk);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
        assert_eq!(ids(&out.orders), ["1001", "1002"]);
        assert_eq!(out.orders[0].customer.name.as_deref(), Some("张三"));
        assert_eq!(out.orders[1].status, OrderStatus::Refunded);
        assert_eq!(out.header[0], "订单编号");
        assert_eq!(out.bytes_read, gbk.len() as u64);
        // UTF-8 with a byte-order mark, as Excel saves it.
        let bom = format!("\u{feff}{t}");
        let out = taobao(bom.as_bytes());
        assert_eq!(ids(&out.orders), ["1001", "1002"]);
    }

    #[test]
    fn gbk_read_as_utf8_is_an_encoding_error() {
        let t = text(&[&row("1001", "交易成功", "128.00", "")]);
        let (gbk, _, _) = encoding_rs::GBK.encode(&t);
        let mut o = opts(Some("tmall"));
        o.encoding = Some(Encoding::Utf8);
        let err = read(InputFormat::Taobao, &gbk, "x.csv", &o).err().unwrap();
        assert!(
            matches!(
                err,
                FileError::Encoding {
                    encoding: "UTF-8",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("--encoding gbk"), "{err}");
    }

    #[test]
    fn undecodable_gbk_row_is_a_row_error() {
        let t = text(&[
            &row("1001", "交易成功", "1", ""),
            &row("1002", "交易成功", "2", ""),
            &row("1003", "交易成功", "3", ""),
        ]);
        let mut gbk = encoding_rs::GBK.encode(&t).0.into_owned();
        // Damage row 3 (line 3): replace 张三 with bytes that are not GBK.
        let (name, _, _) = encoding_rs::GBK.encode("张三");
        let pos = gbk
            .windows(name.len())
            .enumerate()
            .filter(|(_, w)| *w == &name[..])
            .nth(1)
            .unwrap()
            .0;
        gbk[pos] = 0x80;
        gbk[pos + 1] = 0xFF;
        let out = taobao(&gbk);
        assert_eq!(ids(&out.orders), ["1001", "1003"]);
        let e = &out.rejected[0].errors[0];
        assert_eq!((e.line, e.column.as_deref()), (3, Some("收货人姓名")));
        assert!(e.message.contains("not valid GBK"), "{}", e.message);
        assert_eq!(out.rejected[0].order_id.as_deref(), Some("1002"));
        assert_eq!(out.rejected[0].raw_rows[0][12], "交易成功");
    }

    #[test]
    fn row_errors_name_line_and_column() {
        let rows = [
            row("1", "交易成功", "100", ""),
            with(
                row("2", "交易成功", "100", ""),
                "订单创建时间",
                "11-11 00:01",
            ),
            row("3", "交易成功", "1百", ""),
            with(row("4", "交易成功", "100", ""), "宝贝总数量", "0"),
            row("5", "退款中", "100", ""),
            row("6", "交易成功", "100", "120"),
            with(row("7", "交易成功", "100", ""), "买家会员名", ""),
            with(row("8", "交易成功", "100", ""), "联系手机", "1380000000x"),
            row("9", "交易成功", "100", ""),
        ];
        let refs: Vec<&[(&str, &str)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = taobao(text(&refs).as_bytes());
        assert_eq!(ids(&out.orders), ["1", "9"]);
        let got: Vec<_> = out
            .rejected
            .iter()
            .map(|r| {
                assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
                let e = &r.errors[0];
                (
                    e.line,
                    e.column.clone().unwrap_or_default(),
                    e.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        let want: Vec<(u64, String, String)> = [
            (3, "订单创建时间", "11-11 00:01"),
            (4, "买家实际支付金额", "1百"),
            (5, "宝贝总数量", "0"),
            (6, "订单状态", "退款中"),
            (7, "退款金额", "120"),
            (8, "买家会员名", ""),
            (9, "联系手机", "1380000000x"),
        ]
        .into_iter()
        .map(|(l, c, v)| (l, c.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert!(out.rejected[0].errors[0]
            .message
            .contains("2024/11/11 0:01:23"));
        assert!(out.rejected[3].errors[0].message.contains("交易成功"));
    }

    #[test]
    fn ragged_row() {
        let mut t = text(&[&row("1", "交易成功", "100", "")]);
        t.push_str("2,tb_x,,,\n");
        t.push_str(
            text(&[&row("3", "交易成功", "100", "")])
                .lines()
                .nth(1)
                .unwrap(),
        );
        t.push('\n');
        let out = taobao(t.as_bytes());
        assert_eq!(ids(&out.orders), ["1", "3"]);
        let r = &out.rejected[0];
        assert_eq!(r.order_id.as_deref(), Some("2"));
        assert_eq!(r.errors[0].line, 3);
        assert!(r.errors[0]
            .message
            .contains("5 fields but the header has 49"));
        assert_eq!(r.raw_rows, vec![vec!["2", "tb_x", "", "", ""]]);
    }

    #[test]
    fn file_level_errors() {
        assert!(matches!(
            read(InputFormat::Taobao, b"", "x.csv", &opts(Some("tmall"))),
            Err(FileError::Empty { .. })
        ));
        assert!(matches!(
            read(
                InputFormat::Taobao,
                text(&[]).as_bytes(),
                "x.csv",
                &opts(None)
            ),
            Err(FileError::NoChannel { .. })
        ));
        let out = taobao(text(&[]).as_bytes());
        assert!(out.orders.is_empty() && out.rejected.is_empty());
        let t = "订单编号, 买家会员名 ,订单状态,订单创建时间,宝贝标题,宝贝总数量,Order Amount\n";
        let Err(FileError::MissingColumns { missing, found, .. }) = read(
            InputFormat::Taobao,
            t.as_bytes(),
            "x.csv",
            &opts(Some("tmall")),
        ) else {
            panic!("expected MissingColumns");
        };
        assert_eq!(missing, ["买家实际支付金额"]);
        assert_eq!(found[1], "买家会员名");
    }

    #[test]
    fn order_ids_are_cleaned() {
        for (raw, want) in [
            ("=\"2024111122334455\"", "2024111122334455"),
            ("'2024111122334455", "2024111122334455"),
            ("\t2024111122334455", "2024111122334455"),
            (" 2024111122334455 ", "2024111122334455"),
        ] {
            assert_eq!(clean_order_id(raw), want);
        }
    }

    proptest! {
        #[test]
        fn split_amount_is_exact(paid in 0i64..1_000_000_000, q in 1i64..1000) {
            let (unit, disc) = split_amount(Money::from_minor(paid), q);
            prop_assert_eq!(unit.minor() * q - disc.minor(), paid);
            prop_assert!(disc.minor() >= 0 && disc.minor() < q);
        }
    }
}
