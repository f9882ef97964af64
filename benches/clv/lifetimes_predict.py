"""`touchpoint clv predict` as a whole command, in Python lifetimes 0.11.3.

Usage: python lifetimes_predict.py TRANSACTIONS.csv OBSERVATION_END OUT.csv

The same work as
`touchpoint clv predict --from TRANSACTIONS.csv --model bgnbd --unit day
 --horizon 365 --discount-rate 0.1268 --out OUT.csv`:
read customer_id,date,amount; build daily summaries; fit BG/NBD and
Gamma-Gamma (customers with repeat purchases); per customer P(alive),
expected purchases over 365 days, expected spend, and CLV over
round(365 / 30.4375) = 12 months at a monthly rate of
1.1268^(1/12) - 1 (lifetimes' own `_customer_lifetime_value` loop, with
touchpoint's month of 30.4375 days instead of lifetimes' 30 for freq="D");
write the CSV. Prints JSON to stdout: seconds without the imports, per
stage, and the parameters. Run as a child process, so its wall time
including the imports is measured by the caller.
"""
import time

T_START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

warnings.filterwarnings("ignore")
T_IMPORTED = time.perf_counter()

HORIZON_DAYS = 365.0
DAYS_PER_MONTH = 365.25 / 12.0
MONTHLY = 1.1268 ** (1.0 / 12.0) - 1.0
MONTHS = int(round(HORIZON_DAYS / DAYS_PER_MONTH))


def main():
    path, end, out = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds = {}
    t = time.perf_counter()
    df = pd.read_csv(path, parse_dates=["date"], dtype={"customer_id": str})
    seconds["read"] = time.perf_counter() - t

    t = time.perf_counter()
    s = summary_data_from_transaction_data(
        df, "customer_id", "date", monetary_value_col="amount", observation_period_end=end, freq="D"
    )
    seconds["summary"] = time.perf_counter() - t

    t = time.perf_counter()
    bgf = BetaGeoFitter(penalizer_coef=0.0)
    bgf.fit(s["frequency"], s["recency"], s["T"])
    seconds["fit_bgnbd"] = time.perf_counter() - t

    t = time.perf_counter()
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.0)
    ggf.fit(rep["frequency"], rep["monetary_value"])
    seconds["fit_gg"] = time.perf_counter() - t

    t = time.perf_counter()
    f, r, T = s["frequency"], s["recency"], s["T"]
    p_alive = bgf.conditional_probability_alive(f, r, T)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON_DAYS, f, r, T)
    spend = ggf.conditional_expected_average_profit(f, s["monetary_value"])
    # lifetimes.utils._customer_lifetime_value, with 30.4375-day months.
    clv = pd.Series(np.zeros(len(s)), index=s.index)
    prev = 0
    for i in range(1, MONTHS + 1):
        cum = bgf.predict(i * DAYS_PER_MONTH, f, r, T)
        clv = clv + (spend * (cum - prev)) / (1 + MONTHLY) ** i
        prev = cum
    seconds["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    pd.DataFrame(
        {
            "customer_id": s.index,
            "frequency": f.astype(int).values,
            "recency": r.values,
            "T": T.values,
            "p_alive": np.asarray(p_alive),
            "expected_purchases": np.asarray(expected),
            "expected_spend": np.asarray(spend),
            "clv": np.asarray(clv),
        }
    ).to_csv(out, index=False)
    seconds["write"] = time.perf_counter() - t

    params = {k: float(v) for k, v in bgf.params_.items()}
    params.update({k: float(v) for k, v in ggf.params_.items()})
    print(
        json.dumps(
            {
                "seconds": seconds,
                "imports": T_IMPORTED - T_START,
                "after_imports": time.perf_counter() - T_IMPORTED,
                "params": params,
                "customers": int(len(s)),
            }
        )
    )


if __name__ == "__main__":
    main()
