"""The touchpoint reports in pandas, timed: the comparison for `touchpoint bench reports --compare-pandas`.

Usage: python pandas_reports.py DIR   (DIR has orders.csv, lines.csv, products.csv
written by the bench). Prints `name seconds` per report, then peak memory.
Each report is computed from the order tables in memory (CSV load time is
excluded and printed separately), with the definitions of docs/metrics.md.
"""
import resource
import sys
import time

import numpy as np
import pandas as pd

DAY = 86_400_000
OFF = 8 * 3_600_000
d = sys.argv[1]

t = time.perf_counter()
orders = pd.read_csv(f"{d}/orders.csv")
lines = pd.read_csv(f"{d}/lines.csv")
products = pd.read_csv(f"{d}/products.csv")
print(f"load {time.perf_counter() - t:.2f}")

last_order_day = (orders.ordered_at.max() + OFF) // DAY


def purchases():
    o = orders[orders.status.isin(["paid", "partially_refunded"])].copy()
    o["net"] = o.gross_amount - o.refunded_amount
    o["day"] = (o.ordered_at + OFF) // DAY
    return o


def member_summary(o):
    g = o.groupby("member_id")
    s = pd.DataFrame({
        "first_day": g.day.min(),
        "last_day": g.day.max(),
        "orders": g.size(),
        "net": g.net.sum(),
        "days": o.drop_duplicates(["member_id", "day"]).groupby("member_id").size(),
    })
    return s


def quintile(v, higher_better):
    # 1 + floor(5 * strictly_worse / n)
    rank = v.rank(method="min", ascending=higher_better)
    return (1 + (5 * (rank - 1)) // len(v)).astype(int)


def rfm():
    s = member_summary(purchases())
    rec = last_order_day - s.last_day
    r = quintile(rec, False)
    f = quintile(s.days, True)
    m = quintile(s.net, True)
    seg = np.select(
        [(r >= 4) & (f >= 4) & (m >= 4), (r >= 3) & (f >= 3) & (m >= 3), (r == 1) & (f >= 4) & (m >= 4),
         (r <= 2) & (f >= 3), (r == 5) & (f == 1), (r == 4) & (f == 1), r >= 4, r == 3, (r == 2) & (f <= 2),
         (r == 1) & (f <= 2) & (m >= 2)],
        ["Champions", "Loyal", "Can't Lose Them", "At Risk", "New", "Promising", "Potential Loyalist",
         "Need Attention", "About To Sleep", "Hibernating"], "Lost")
    df = pd.DataFrame({"seg": seg, "rec": rec, "f": s.days, "m": s.net})
    return df.groupby("seg").agg(members=("m", "size"), revenue=("m", "sum"), r=("rec", "mean"), f=("f", "mean"))


def cogs_by_order():
    l = lines.copy()
    l["cogs"] = l.quantity * l.unit_cost
    return l.groupby(["channel", "order_id"]).cogs.sum()


def abc():
    o = purchases()
    c = cogs_by_order()
    o = o.join(c, on=["channel", "order_id"])
    fee = o.channel.map({"tmall": 0.05, "jd": 0.04}).fillna(0.0)
    o["contrib"] = o.net - o.cogs.fillna(0) - 800 - (fee * o.net).round()
    s = o.groupby("member_id").contrib.sum().sort_values(ascending=False)
    pos = s[s >= 0]
    total = pos.sum()
    before = pos.cumsum() - pos
    cls = np.where(before < 0.8 * total, "A", np.where(before < 0.95 * total, "B", "C"))
    return pd.Series(cls).value_counts(), (s < 0).sum()


def retention():
    o = purchases()
    s = member_summary(o)
    o = o.join(s.first_day, on="member_id")
    later = o[o.day > o.first_day].groupby("member_id").day.min()
    s["second"] = later
    out = {}
    for w in (90, 180, 365):
        obs = s[s.first_day + w <= last_order_day]
        out[w] = ((obs.second <= obs.first_day + w).sum(), len(obs))
    for w in (90, 180):
        out[f"inactive{w}"] = (last_order_day - s.last_day >= w).sum()
    prev = set(o[(o.day > last_order_day - 730) & (o.day <= last_order_day - 365)].member_id)
    cur = set(o[o.day > last_order_day - 365].member_id)
    out["annual"] = len(prev & cur) / max(len(prev), 1)
    return out


def month(day):
    dt = pd.to_datetime(day, unit="D")
    return dt.dt.year * 12 + dt.dt.month - 1


def cohorts():
    o = purchases()
    o["month"] = month(o.day)
    first = o.groupby("member_id").month.min().rename("cohort")
    o = o.join(first, on="member_id")
    o["since"] = o.month - o.cohort
    size = first.value_counts()
    active = o.drop_duplicates(["member_id", "month"]).groupby(["cohort", "since"]).size()
    rev = o.groupby(["cohort", "since"]).net.sum()
    t = pd.DataFrame({"active": active, "rev": rev}).reset_index()
    t["size"] = t.cohort.map(size)
    t["share"] = t.active / t["size"]
    t["rpm"] = t.rev / t["size"]
    t["cum"] = t.groupby("cohort").rpm.cumsum()
    return t


def products_report():
    o = purchases().sort_values(["member_id", "ordered_at", "channel", "order_id"])
    o["rn"] = o.groupby("member_id").cumcount() + 1
    rep = o.groupby("member_id").day.agg(lambda x: 0) if False else (o.groupby("member_id").day.nunique() > 1)
    o = o.join(rep.rename("repeater"), on="member_id")
    li = lines.merge(o[["channel", "order_id", "net", "gross_amount", "order_discount", "rn", "repeater"]],
                     on=["channel", "order_id"])
    val = li.quantity * li.unit_price - li.discount
    tot = (li.gross_amount + li.order_discount).replace(0, 1)
    li["lnet"] = li.net * val // tot
    li["cogs"] = li.quantity * li.unit_cost
    li = li.merge(products, on="sku", how="left")
    out = []
    for key in ("sku", "category"):
        po = li.groupby([key, "channel", "order_id"]).agg(
            net=("lnet", "sum"), units=("quantity", "sum"), cogs=("cogs", "sum"), rn=("rn", "max"),
            repeater=("repeater", "max")).reset_index()
        po["first"] = po.rn == 1
        po["first_rep"] = po["first"] & po.repeater
        out.append(po.groupby(key).agg(net=("net", "sum"), units=("units", "sum"), cogs=("cogs", "sum"),
                                       orders=("rn", "size"), first=("first", "sum"), rep=("first_rep", "sum")))
    return out


def channels():
    o = purchases()
    g = o.groupby("channel")
    first = o.sort_values(["member_id", "ordered_at"]).drop_duplicates("member_id").channel.value_counts()
    days = o.drop_duplicates(["member_id", "channel", "day"]).groupby(["channel", "member_id"]).size()
    rep = (days >= 2).groupby("channel").mean()
    t = pd.DataFrame({"members": g.member_id.nunique(), "orders": g.size(), "net": g.net.sum(),
                      "new": first, "repeat": rep})
    t["aov"] = t.net / t.orders
    mc = pd.crosstab(o.member_id, o.channel).clip(upper=1)
    overlap = mc.T @ mc
    return t, overlap


def summary():
    return rfm(), abc(), retention(), cohorts(), products_report(), channels()


for name, fn in [("rfm", rfm), ("abc", abc), ("retention", retention), ("cohorts", cohorts),
                 ("products", products_report), ("channels", channels), ("summary", summary)]:
    t = time.perf_counter()
    fn()
    print(f"{name} {time.perf_counter() - t:.2f}")
print(f"peak_memory_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}")
