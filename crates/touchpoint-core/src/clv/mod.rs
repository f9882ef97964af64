//! Customer lifetime value: buy-till-you-die models (BG/NBD, MBG/NBD,
//! Pareto/NBD) and the Gamma-Gamma spend model.
