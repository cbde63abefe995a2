#!/usr/bin/env node
// flow.js -- the smugoauth web flow (examples/web.lua) through a real browser:
// Debian's chromium driven by playwright-core (no downloaded browser).
//
//   node spec/support/browser/flow.js --url http://127.0.0.1:<port>/ --out DIR [--cross URL]
//
// Opens the start page, clicks Authorize, lands on the provider's approve
// page and clicks Approve, comes back to the start page, submits the form with
// the default API path and reads the JSON it shows. Then submits a path that
// would leave the API and checks it is refused. Then opens /authorize as a
// user typing its URL would, and (with --cross) from a page of another origin
// (a script there navigating to it). Takes a screenshot of the result
// (DIR/result.png) and prints one JSON object on stdout:
//   { ok, steps: [{name, url, status}], nickname, result_text, cookies,
//     document_cookie, refused_status, refused_text, typed_url, typed_status,
//     cross_url, cross_status, cross_text, console, screenshot, error }
// Exits 0 when every step worked, 1 otherwise (the JSON says where it stopped).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.SMUGOAUTH_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '');
    if (!['url', 'out', 'cross'].includes(k) || argv[i + 1] === undefined) {
      process.stderr.write('usage: flow.js --url http://127.0.0.1:<port>/ --out DIR [--cross URL]\n');
      process.exit(2);
    }
    o[k] = argv[i + 1];
  }
  if (!o.url || !o.out) {
    process.stderr.write('usage: flow.js --url http://127.0.0.1:<port>/ --out DIR [--cross URL]\n');
    process.exit(2);
  }
  return o;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const report = { ok: false, steps: [], console: [] };
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'smugoauth-chromium-'));
  let context;
  let page;
  const step = (name, response) => {
    report.steps.push({ name, url: page.url(), status: response ? response.status() : null });
  };
  try {
    // a fresh profile each run: launchPersistentContext passes it as --user-data-dir
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1000, height: 900 },
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(20000);
    page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));

    let res = await page.goto(opts.url);
    step('start', res);
    const authorize = page.locator('a#authorize');
    await authorize.waitFor();

    // Authorize -> /authorize -> 302 -> the provider's approve page
    [res] = await Promise.all([page.waitForNavigation(), authorize.click()]);
    step('authorize', res);
    const approve = page.locator('#approve');
    await approve.waitFor();
    report.approve_page = page.url();

    // Approve -> 302 to /callback -> 302 to /
    [res] = await Promise.all([page.waitForURL(new URL('/', opts.url).href), approve.click()]);
    step('approved', res);
    const input = page.locator('input#path');
    await input.waitFor();
    report.default_path = await input.inputValue();
    report.cookies = (await context.cookies()).map((c) => ({
      name: c.name, domain: c.domain, path: c.path, httpOnly: c.httpOnly, secure: c.secure,
      sameSite: c.sameSite, length: c.value.length,
    }));
    report.document_cookie = await page.evaluate(() => document.cookie);

    // submit the form with the default path
    [res] = await Promise.all([page.waitForNavigation(), page.locator('button#send').click()]);
    step('test', res);
    const result = page.locator('pre#result');
    await result.waitFor();
    report.result_text = await result.textContent();
    report.scripts = await page.locator('script').count();
    const parsed = JSON.parse(report.result_text);
    report.nickname = parsed.Response && parsed.Response.User && parsed.Response.User.NickName;
    report.screenshot = path.join(opts.out, 'result.png');
    await page.screenshot({ path: report.screenshot, fullPage: true });

    // a path off the API is refused, and shown escaped
    await page.locator('input#path').fill('/api/v2.evil.com/"><b>x</b>');
    [res] = await Promise.all([page.waitForNavigation(), page.locator('button#send').click()]);
    step('refused', res);
    report.refused_status = res ? res.status() : null;
    report.refused_text = await page.locator('#error').textContent();
    report.refused_bold = await page.locator('p#error b').count();
    report.refused_screenshot = path.join(opts.out, 'refused.png');
    await page.screenshot({ path: report.refused_screenshot, fullPage: true });

    // /authorize typed in the address bar (Sec-Fetch-Site: none): to the provider
    const authorizeUrl = new URL('/authorize', opts.url).href;
    res = await page.goto(authorizeUrl);
    step('typed', res);
    await page.locator('#approve').waitFor();
    report.typed_url = page.url();
    report.typed_status = res ? res.status() : null;

    // /authorize opened by a script of another origin: refused, no provider call
    if (opts.cross) {
      res = await page.goto(opts.cross);
      step('cross-page', res);
      [res] = await Promise.all([
        page.waitForNavigation(),
        page.evaluate((u) => { window.location.href = u; }, authorizeUrl),
      ]);
      step('cross', res);
      report.cross_url = page.url();
      report.cross_status = res ? res.status() : null;
      report.cross_text = await page.locator('#error').textContent();
    }

    report.ok = report.nickname !== undefined;
  } catch (e) {
    report.error = String(e && e.stack || e);
    if (page) {
      report.url = page.url();
      try {
        report.error_screenshot = path.join(opts.out, 'error.png');
        await page.screenshot({ path: report.error_screenshot, fullPage: true });
        report.error_html = (await page.content()).slice(0, 4000);
      } catch (_) { /* the page may be gone */ }
    }
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(report.ok ? 0 : 1);
}

main();
