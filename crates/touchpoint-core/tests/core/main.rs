mod analytics_cdnow;
mod clv;
