"""The CLV pipeline of `touchpoint bench clv`, in Python lifetimes 0.11.3.

Usage: python lifetimes_bench.py TRANSACTIONS.csv OBSERVATION_END

Reads customer_id,date,amount; builds daily summaries; fits BG/NBD and
Gamma-Gamma (on customers with repeat purchases); computes 12-month CLV
(monthly discount 0.01, freq="D"). Prints JSON: seconds per stage,
parameters, mean CLV, peak memory. Tested with lifetimes 0.11.3,
pandas 2.2.3, numpy 1.26, scipy 1.17.
"""
import json
import resource
import sys
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.filterwarnings("ignore")


def main():
    path, end = sys.argv[1], sys.argv[2]
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
    clv = ggf.customer_lifetime_value(
        bgf, s["frequency"], s["recency"], s["T"], s["monetary_value"], time=12, discount_rate=0.01, freq="D"
    )
    seconds["clv"] = time.perf_counter() - t

    params = {k: float(v) for k, v in bgf.params_.items()}
    params.update({k: float(v) for k, v in ggf.params_.items()})
    print(
        json.dumps(
            {
                "seconds": seconds,
                "params": params,
                "mean_clv": float(clv.mean()),
                "customers": int(len(s)),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            }
        )
    )


if __name__ == "__main__":
    main()
