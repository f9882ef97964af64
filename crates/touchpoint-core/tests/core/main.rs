mod clv;
