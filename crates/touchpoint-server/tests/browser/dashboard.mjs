// Drives the dashboard in Debian's headless Chromium (playwright-core, no
// browser download). Started by the server's integration test
// `dashboard::the_dashboard_works_in_a_real_browser` with DASHBOARD_URL,
// ANALYST_KEY, SCREENSHOTS and PROFILE_DIR set: signs in, opens every page,
// changes a filter, checks the numbers shown against the API's, that there
// is no console error, downloads a CSV, signs out.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const base = process.env.DASHBOARD_URL;
const key = process.env.ANALYST_KEY;
const shots = process.env.SCREENSHOTS;
const profile = process.env.PROFILE_DIR;
if (!base || !key || !shots || !profile) {
  console.error("DASHBOARD_URL, ANALYST_KEY, SCREENSHOTS and PROFILE_DIR are required");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const problems = [];
function check(ok, what) {
  if (!ok) problems.push(what);
}

async function api(path) {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${key}` } });
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

function near(a, b) {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));
}

const money = (minor) =>
  (minor < 0 ? "-" : "") +
  Math.floor(Math.abs(minor) / 100).toLocaleString("en-US") +
  "." +
  String(Math.abs(minor) % 100).padStart(2, "0");

const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on("console", (m) => {
  if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
});
page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
page.on("requestfailed", (r) => consoleErrors.push(`${r.url()}: request failed ${r.failure()?.errorText}`));

// Page weight: the HTML and every asset it loaded, gzipped (what a
// compressing proxy sends), printed per page.
const loaded = new Map();
page.on("response", async (r) => {
  try {
    if (r.url().startsWith(base + "/assets/")) loaded.set(r.url(), gzipSync(await r.body()).length);
  } catch {}
});
const weights = [];
async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  const html = gzipSync(Buffer.from(await page.content())).length;
  const assets = [...loaded.values()].reduce((a, b) => a + b, 0);
  weights.push(`weight ${name}: html ${html} B, assets ${assets} B, total ${html + assets} B gzipped`);
  check(html + assets < 200 * 1024, `${name}: ${html + assets} B gzipped with assets, over 200 KB`);
}

async function chartsDrawn(name) {
  const plots = await page.locator(".plot").count();
  const canvases = await page.locator(".plot canvas").count();
  check(plots === canvases, `${name}: ${plots} charts but ${canvases} drawn`);
}

async function kpis() {
  return page.$$eval("[data-kpi]", (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.kpi, { v: e.dataset.v, text: e.querySelector(".value").textContent }])),
  );
}

async function apiOf(name) {
  return page.getAttribute(`[data-report="${name}"]`, "data-api");
}

async function compareOverview(label) {
  const k = await kpis();
  const o = await api(await apiOf("overview"));
  for (const f of ["net_revenue", "orders", "buyers", "new_members", "aov", "repeat_rate", "annual_return_rate"]) {
    check(k[f] && near(Number(k[f].v), o.current[f]), `${label}: ${f} shown ${k[f]?.v}, API ${o.current[f]}`);
  }
  check(k.net_revenue.text === money(o.current.net_revenue), `${label}: net revenue text ${k.net_revenue.text} vs ${money(o.current.net_revenue)}`);
  check(k.orders.text === o.current.orders.toLocaleString("en-US"), `${label}: orders text ${k.orders.text}`);
  check(o.current.orders > 0, `${label}: the period has orders`);
  // The chart's table: one row per day, totals equal the headline.
  const total = await page.$$eval("#daily tbody tr", (rows) =>
    rows.reduce((s, r) => s + Number(r.children[r.children.length - 2].dataset.v), 0),
  );
  check(total === o.current.net_revenue, `${label}: daily total ${total} vs ${o.current.net_revenue}`);
  return o;
}

// Sign in: the dashboard sends us to the sign-in page first.
await page.goto(base + "/overview?period=30");
check(page.url().includes("/signin"), `not redirected to sign-in: ${page.url()}`);
await shot("00-signin");
await page.fill("input[name=key]", key);
await Promise.all([page.waitForURL("**/overview"), page.click("button[type=submit]")]);
check((await page.textContent("h1")) === "Overview", "overview after sign-in");

// Overview, then a filter change (period and channel) through the form.
await page.goto(base + "/overview?period=30");
await chartsDrawn("overview");
await compareOverview("overview 30 days");
await shot("01-overview");
const channel = await page.$eval("select[name=channel] option:nth-child(2)", (o) => o.value);
await page.selectOption("select[name=period]", "90");
await page.selectOption("select[name=channel]", channel);
await Promise.all([page.waitForURL(/channel=/), page.click("form.filters button[type=submit]")]);
const url = new URL(page.url());
check(url.searchParams.get("period") === "90" && url.searchParams.get("channel") === channel, `filters in the URL: ${page.url()}`);
check(!url.searchParams.has("from"), `no dates in the URL of a fixed period: ${page.url()}`);
await compareOverview(`overview 90 days ${channel}`);
await chartsDrawn("overview filtered");
await shot("02-overview-filtered");
check(await page.isDisabled("form[action='/admin/analytics/rebuild'] button"), "the admin form is disabled for an analyst");

// A table downloads as CSV with the numbers of the table.
const [download] = await Promise.all([page.waitForEvent("download"), page.click("button.csv[data-table=daily]")]);
const csv = readFileSync(await download.path(), "utf8").trim().split(/\r?\n/);
const rows = await page.locator("#daily tbody tr").count();
check(csv.length === rows + 1, `CSV has ${csv.length} lines for ${rows} rows`);
check(csv[0].startsWith("date,"), `CSV header ${csv[0]}`);

// Customers.
await page.goto(base + "/customers?period=ytd");
await chartsDrawn("customers");
{
  const rfm = await api(await apiOf("rfm"));
  const shown = await page.$$eval("#rfm tbody tr", (rs) => rs.map((r) => [r.children[0].dataset.v, Number(r.children[1].dataset.v)]));
  check(shown.length === rfm.segments.length, `customers: ${shown.length} segments vs ${rfm.segments.length}`);
  rfm.segments.forEach((s, i) => {
    check(shown[i] && shown[i][1] === s.members, `customers: segment ${s.segment} shown ${shown[i]?.[1]}, API ${s.members}`);
  });
  const ret = await api(await apiOf("retention"));
  const annual = await page.$eval("#retention tbody tr:last-child td:nth-child(4)", (td) => Number(td.dataset.v));
  check(near(annual, ret.annual_return.rate), `customers: annual return ${annual} vs ${ret.annual_return.rate}`);
  const ch = await api(await apiOf("channels"));
  const overlap = await page.$$eval("#overlap tbody tr", (rs) => rs.map((r) => [...r.children].slice(1).map((c) => Number(c.dataset.v))));
  check(JSON.stringify(overlap) === JSON.stringify(ch.overlap), "customers: overlap matrix equals the API's");
  const cohorts = await api(await apiOf("cohorts"));
  const cohortRows = await page.locator("#cohorts tbody tr").count();
  check(cohortRows === cohorts.cohorts.length, `customers: ${cohortRows} cohort rows vs ${cohorts.cohorts.length}`);
}
await shot("03-customers");
await page.goto(base + "/customers?period=ytd&by=channel");
await shot("04-customers-cohorts-by-channel");

// Value.
await page.goto(base + "/value");
await chartsDrawn("value");
{
  const k = await kpis();
  const m = await api("/api/clv/models");
  check(Number(k.n_customers.v) === m.models[0].n_customers, `value: n_customers ${k.n_customers.v} vs ${m.models[0].n_customers}`);
  check(near(Number(k.log_likelihood.v), m.models[0].log_likelihood), "value: log-likelihood");
}
await shot("05-value");

// Products.
await page.goto(base + "/products?period=90");
{
  const p = await api(await apiOf("products"));
  const shown = await page.$$eval("#products tbody tr", (rs) => rs.map((r) => [r.children[0].dataset.v, Number(r.children[4].dataset.v)]));
  // The top 200 by net revenue (the demo has fewer, so all of them).
  const top = [...p.products].sort((a, b) => b.net_revenue - a.net_revenue || (a.key < b.key ? -1 : 1)).slice(0, 200);
  check(shown.length === top.length, `products: ${shown.length} rows vs ${top.length}`);
  for (const x of top) {
    const row = shown.find((s) => s[0] === x.key);
    check(row && row[1] === x.net_revenue, `products: ${x.key} shown ${row?.[1]}, API ${x.net_revenue}`);
  }
}
await shot("06-products");

// Members: search, then the member 360.
await page.goto(base + "/members");
await page.fill("input[name=q]", "M-1");
await Promise.all([page.waitForURL(/q=M-1/), page.click("form.filters button[type=submit]")]);
await shot("07-members-search");
await Promise.all([page.waitForURL(/\/members\/M-/), page.click("#results tbody a")]);
{
  const id = page.url().split("/members/")[1];
  const m = await api(`/api/members/${id}`);
  const k = await kpis();
  check(Number(k.orders.v) === m.order_count, `member ${id}: orders ${k.orders.v} vs ${m.order_count}`);
  const ids = await page.locator("#identifiers tbody tr").count();
  check(ids === m.identifiers.length, `member ${id}: ${ids} identifiers vs ${m.identifiers.length}`);
}
await shot("08-member-360");

// Acquisition: the headline figures and every channel-month row equal the
// API's report.
await page.goto(base + "/acquisition?period=ytd");
await chartsDrawn("acquisition");
{
  const a = await api(await apiOf("acquisition"));
  const k = await kpis();
  for (const f of ["spend", "new_valid_members", "new_paying_customers", "cost_per_valid_member", "cost_per_paying_customer"]) {
    check(k[f] && near(Number(k[f].v), a.total[f]), `acquisition: ${f} shown ${k[f]?.v}, API ${a.total[f]}`);
  }
  check(k.spend.text === money(a.total.spend), `acquisition: spend text ${k.spend.text}`);
  check(a.total.spend > 0 && a.total.new_paying_customers > 0, "acquisition: the demo has spend and customers");
  const shown = await page.$$eval("#channels tbody tr", (rs) =>
    rs.map((r) => [r.children[0].dataset.v, r.children[1].dataset.v, Number(r.children[2].dataset.v), Number(r.children[7].dataset.v)]),
  );
  check(shown.length === a.channels.length, `acquisition: ${shown.length} rows vs ${a.channels.length}`);
  a.channels.forEach((x, i) => {
    const s = shown[i];
    check(
      s && s[0] === x.channel && s[1] === x.month && s[2] === x.spend && s[3] === x.new_paying_customers,
      `acquisition: row ${i} shown ${JSON.stringify(s)}, API ${x.channel} ${x.month} ${x.spend} ${x.new_paying_customers}`,
    );
  });
}
await shot("09-acquisition");

// Sign out.
await page.goto(base + "/overview");
await Promise.all([page.waitForURL(/signedout/), page.click("form.signout button")]);
await page.goto(base + "/overview");
check(page.url().includes("/signin"), "signed out: back to sign-in");

await context.close();
problems.push(...consoleErrors.map((e) => `console: ${e}`));
if (problems.length) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(weights.join("\n"));
console.log("all pages checked");
