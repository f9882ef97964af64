-- A compact binary copy of member_summary (the decoded report data set),
-- rebuilt with it by Store::refresh_member_summary so that a report reads a
-- few large rows instead of one row per member. The byte stream is split into
-- parts in `part` order; its header names the summary_version it was built
-- from, and a reader ignores a snapshot whose version does not match
-- analytics_state.summary_version (it then reads member_summary).
CREATE TABLE member_snapshot (
    part BIGINT PRIMARY KEY,
    data BLOB NOT NULL
);
